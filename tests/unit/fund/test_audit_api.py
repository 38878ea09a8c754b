"""Other parts of the service (the video recorder) append to the core's audit chain, also
late: an entry parked while the core was down keeps its time and is merged once."""
from sqlalchemy import select

from fund import audit
from fund.anchor import AnchorFile
from fund.db import make_engine
from fund.models import AuditRecord
from fund.settings import anchor_path_for

RECORD = {"actor": "staff01", "action": "video.recording", "subject": "t-123",
          "outcome": "sha256=" + "ab" * 32 + " bytes=1234 file=t-123.webm"}


def records(db_url):
    with make_engine(db_url).connect() as conn:
        return conn.execute(select(AuditRecord).order_by(AuditRecord.seq)).all()


def test_recording_hash_lands_in_the_chain_and_the_chain_still_verifies(client, db_url, audit_key):
    resp = client.post("/audit/records", json=RECORD)
    assert resp.status_code == 201 and resp.json()["duplicate"] is False
    rows = records(db_url)
    assert len(rows) == 1, "the call's record is the one it asked for, no second one by the middleware"
    assert rows[0].seq == resp.json()["seq"] and rows[0].outcome == RECORD["outcome"] and rows[0].actor == "staff01"
    assert audit.verify(make_engine(db_url), audit_key).ok


def test_a_parked_entry_keeps_its_time_and_merging_it_twice_writes_one_record(client, db_url, audit_key):
    parked = {**RECORD, "at": "2026-11-23T09:30:00+08:00", "idempotency_key": "rec:t-123"}
    first = client.post("/audit/records", json=parked)
    again = client.post("/audit/records", json=parked)
    assert first.status_code == again.status_code == 201
    assert again.json() == {"seq": first.json()["seq"], "duplicate": True}
    rows = records(db_url)
    assert len(rows) == 1 and rows[0].timestamp == "2026-11-23T01:30:00.000000"   # UTC
    other = client.post("/audit/records", json={**parked, "outcome": "sha256=" + "cd" * 32})
    assert other.status_code == 409 and other.json()["detail"]["code"] == "idempotency_conflict"
    assert audit.verify(make_engine(db_url), audit_key).ok


def test_bad_audit_records_are_refused_without_breaking_the_chain(client, db_url, audit_key):
    assert client.post("/audit/records", json={"actor": "x"}).status_code == 422
    assert client.post("/audit/records", json={"actor": "", "action": "a", "subject": "s", "outcome": "o"}).status_code == 422
    assert client.post("/audit/records", json={**RECORD, "at": "2027-01-01T00:00:00"}).status_code == 422
    assert client.post("/audit/records", json={**RECORD, "idempotency_key": "has space"}).status_code == 422
    assert client.post("/audit/records", headers={"Authorization": "Bearer wrong"},
                       json={"actor": "a", "action": "a", "subject": "s", "outcome": "o"}).status_code == 401
    assert audit.verify(make_engine(db_url), audit_key).ok


def test_the_head_is_anchored_periodically_and_at_shutdown(make_client, db_url, audit_key):
    anchor = AnchorFile(anchor_path_for(db_url))
    with make_client(core_audit_anchor_every=3) as client:
        for i in range(4):
            client.post("/audit/records", json={**RECORD, "subject": f"t-{i}"})
        assert [a.seq for a in anchor.read()] == [3]
    assert [a.seq for a in anchor.read()] == [3, 4]
    assert audit.verify(make_engine(db_url), audit_key, anchor.read()).ok
