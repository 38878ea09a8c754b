"""Other parts of the service (the video recorder) append to the core's audit hash chain."""
from sqlalchemy import select

from fund import audit
from fund.db import make_engine
from fund.models import AuditRecord


def test_recording_hash_lands_in_the_chain_and_the_chain_still_verifies(client, db_url):
    record = {"actor": "staff01", "action": "video.recording", "subject": "t-123",
              "outcome": "sha256=" + "ab" * 32 + " bytes=1234 file=t-123.webm"}
    resp = client.post("/audit/records", json=record)
    assert resp.status_code == 201
    seq = resp.json()["seq"]
    engine = make_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(AuditRecord).where(AuditRecord.seq == seq)).one()
    assert row.outcome == record["outcome"] and row.actor == "staff01"
    assert audit.verify(engine).ok


def test_bad_audit_records_are_refused_without_breaking_the_chain(client, db_url):
    assert client.post("/audit/records", json={"actor": "x"}).status_code == 422
    assert client.post("/audit/records", json={"actor": "", "action": "a", "subject": "s", "outcome": "o"}).status_code == 422
    assert client.post("/audit/records", headers={"Authorization": "Bearer wrong"},
                       json={"actor": "a", "action": "a", "subject": "s", "outcome": "o"}).status_code == 401
    assert audit.verify(make_engine(db_url)).ok
