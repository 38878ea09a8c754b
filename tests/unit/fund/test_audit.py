"""Audit chain: appends link up under an HMAC key; any change, insertion or deletion is found,
so is removal from the end (against the anchor file), and a record rolls back with its change."""
import datetime as dt
import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import delete, func, select, update

from fund import audit
from fund.anchor import AnchorFile
from fund.db import create_schema, make_engine, make_session_factory, write_transaction
from fund.errors import IdempotencyConflict
from fund.models import AuditRecord, SmsOutbox
from fund.settings import get_settings

KEY = b"test-audit-key"


def make_log(tmp_path, n=0, every=5):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    engine = make_engine(url)
    create_schema(engine)
    anchor = AnchorFile(tmp_path / "audit-anchor.log")
    log = audit.AuditLog(make_session_factory(engine), KEY, anchor, anchor_every=every)
    for i in range(n):
        log.append(actor=f"web:{i}", action="GET /persons/{person_ref}/balance", subject="320***********0454",
                   outcome="200")
    return engine, log, url, anchor


def cli(url, anchor, tmp_path, command="verify"):
    key_file = tmp_path / "audit.key"
    key_file.write_bytes(KEY + b"\n")
    return audit.main([command, "--database-url", url, "--key-file", str(key_file), "--anchor-path", str(anchor.path)])


def test_chain_of_appends_verifies_and_is_anchored_every_n_records(tmp_path):
    engine, log, _, anchor = make_log(tmp_path, 12, every=5)
    assert log.append(actor="a", action="b", subject="c", outcome="d").seq == 13
    assert [a.seq for a in anchor.read()] == [5, 10]
    report = audit.verify(engine, KEY, anchor.read())
    assert report.ok and report.records == 13 and report.anchored_seq == 10


def test_empty_chain_is_valid(tmp_path):
    engine, _, _, _ = make_log(tmp_path)
    assert audit.verify(engine, KEY).ok


def test_another_key_does_not_verify(tmp_path):
    engine, _, _, _ = make_log(tmp_path, 3)
    report = audit.verify(engine, b"another-key")
    assert not report.ok and report.first_broken_seq == 1


def test_changed_record_is_reported_first(tmp_path):
    engine, _, _, _ = make_log(tmp_path, 10)
    with engine.begin() as conn:
        conn.execute(update(AuditRecord).where(AuditRecord.seq == 4).values(outcome="200 ok"))
    report = audit.verify(engine, KEY)
    assert not report.ok and report.first_broken_seq == 4 and report.records == 3


def test_edited_outcome_rehashed_with_plain_sha256_is_detected(tmp_path):
    """Without the key a forger can only recompute plain hashes: the record itself fails."""
    engine, _, _, _ = make_log(tmp_path, 10)
    with engine.begin() as conn:
        rows = conn.execute(AuditRecord.__table__.select().order_by(AuditRecord.seq)).mappings().all()
        prev = rows[5]["prev_hash"]
        for row in rows[5:]:  # rewrite seq 6 and relink every later record, as the old sha256 chain allowed
            forged = {**row, "prev_hash": prev, "outcome": "403" if row["seq"] == 6 else row["outcome"]}
            prev = hashlib.sha256(audit.canonical(forged)).hexdigest()
            conn.execute(update(AuditRecord).where(AuditRecord.seq == row["seq"])
                         .values(outcome=forged["outcome"], prev_hash=forged["prev_hash"], hash=prev))
    report = audit.verify(engine, KEY)
    assert not report.ok and report.first_broken_seq == 6 and "HMAC" in report.reason


def test_rehashed_forgery_with_the_key_breaks_the_next_link(tmp_path):
    engine, _, _, _ = make_log(tmp_path, 10)
    with engine.begin() as conn:
        row = conn.execute(AuditRecord.__table__.select().where(AuditRecord.seq == 6)).mappings().one()
        forged = {**row, "subject": "forged"}
        conn.execute(update(AuditRecord).where(AuditRecord.seq == 6)
                     .values(subject="forged", hash=audit.record_hash(forged, KEY)))
    assert audit.verify(engine, KEY).first_broken_seq == 7


def test_deleted_record_is_reported(tmp_path):
    engine, _, _, _ = make_log(tmp_path, 10)
    with engine.begin() as conn:
        conn.execute(delete(AuditRecord).where(AuditRecord.seq == 3))
    report = audit.verify(engine, KEY)
    assert not report.ok and report.first_broken_seq == 3


def test_deleting_the_last_records_is_detected_through_the_anchor(tmp_path):
    engine, _, _, anchor = make_log(tmp_path, 12, every=5)
    with engine.begin() as conn:
        conn.execute(delete(AuditRecord).where(AuditRecord.seq > 7))   # 8..12 gone, 1..7 still link up
    assert audit.verify(engine, KEY).ok                                 # the chain alone cannot tell
    report = audit.verify(engine, KEY, anchor.read())
    assert not report.ok and report.records == 7 and report.first_broken_seq == 8
    assert "seq=10 was anchored" in report.reason


def test_rewritten_tail_disagrees_with_the_anchor(tmp_path):
    """Even with the key, replacing anchored records shows: the anchored hash is not in the chain."""
    engine, log, _, anchor = make_log(tmp_path, 10, every=5)
    with engine.begin() as conn:
        conn.execute(delete(AuditRecord).where(AuditRecord.seq > 4))
    quiet = audit.AuditLog(log._sessions, KEY)   # no anchor file: the rewriter's own writer
    for _ in range(6):
        quiet.append(actor="x", action="y", subject="z", outcome="rewritten")
    report = audit.verify(engine, KEY, anchor.read())
    assert not report.ok and report.first_broken_seq == 5 and "anchored at" in report.reason


def test_a_change_and_its_record_roll_back_together(tmp_path):
    engine, log, _, _ = make_log(tmp_path, 3)
    sessions = make_session_factory(engine)

    def failing_change(session):
        session.add(SmsOutbox(phone="13800001111", code="123456", text="t", sent_at=dt.datetime(2026, 1, 1)))
        log.append_in(session, actor="web:1", action="identity.challenge", subject="-", outcome="sent")
        raise RuntimeError("the SMS gateway refused")

    with pytest.raises(RuntimeError):
        write_transaction(sessions, failing_change)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(SmsOutbox)) == 0
        assert session.scalar(select(func.max(AuditRecord.seq))) == 3
    assert log.append(actor="a", action="b", subject="c", outcome="d").seq == 4
    assert audit.verify(engine, KEY).ok


def test_a_rolled_back_record_is_never_anchored(tmp_path):
    engine, log, _, anchor = make_log(tmp_path, 4, every=5)
    sessions = make_session_factory(engine)

    def fifth_fails(session):
        log.append_in(session, actor="a", action="b", subject="c", outcome="d")
        raise RuntimeError("change failed")

    with pytest.raises(RuntimeError):
        write_transaction(sessions, fifth_fails)
    assert anchor.read() == []
    log.append(actor="a", action="b", subject="c", outcome="d")
    assert [a.seq for a in anchor.read()] == [5]


def test_idempotency_key_writes_one_record_and_refuses_a_different_entry(tmp_path):
    engine, log, _, _ = make_log(tmp_path, 2)
    at = dt.datetime(2026, 11, 20, 8, 30)
    entry = {"actor": "recorder", "action": "video.recording", "subject": "t-1", "outcome": "sha256=ab"}
    first = log.append(**entry, at=at, idempotency_key="rec:t-1")
    again = log.append(**entry, idempotency_key="rec:t-1")
    assert (first.seq, first.duplicate) == (3, False) and (again.seq, again.duplicate) == (3, True)
    with pytest.raises(IdempotencyConflict):
        log.append(**{**entry, "outcome": "sha256=cd"}, idempotency_key="rec:t-1")
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(AuditRecord)) == 3
        assert conn.scalar(select(AuditRecord.timestamp).where(AuditRecord.seq == 3)) == "2026-11-20T08:30:00.000000"
    assert audit.verify(engine, KEY).ok


def test_anchor_head_writes_once_per_head(tmp_path):
    _, log, _, anchor = make_log(tmp_path, 3, every=50)
    assert log.anchor_head().seq == 3
    log.anchor_head()
    assert [a.seq for a in anchor.read()] == [3]


def test_cli_exit_codes(tmp_path, capsys):
    engine, _, url, anchor = make_log(tmp_path, 7, every=5)
    assert cli(url, anchor, tmp_path) == 0
    assert "audit chain ok: 7 records" in capsys.readouterr().out
    with engine.begin() as conn:
        conn.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor="x"))
    assert cli(url, anchor, tmp_path) == 1
    assert "BROKEN at seq=2" in capsys.readouterr().out


def test_cli_reports_truncation_and_anchors_on_demand(tmp_path, capsys):
    engine, _, url, anchor = make_log(tmp_path, 7, every=5)
    assert cli(url, anchor, tmp_path, "anchor") == 0
    assert "anchored seq=7" in capsys.readouterr().out
    with engine.begin() as conn:
        conn.execute(delete(AuditRecord).where(AuditRecord.seq == 7))
    assert cli(url, anchor, tmp_path) == 1
    assert "seq=7 was anchored" in capsys.readouterr().out


def test_cli_refuses_an_unanchored_long_chain(tmp_path, capsys):
    _, _, url, anchor = make_log(tmp_path, 50, every=50)   # 50: CORE_AUDIT_ANCHOR_EVERY's default
    anchor.path.unlink()
    assert cli(url, anchor, tmp_path) == 1
    assert "UNANCHORED" in capsys.readouterr().out


def test_cli_reads_key_and_anchor_from_settings(tmp_path, monkeypatch, capsys):
    _, _, url, _ = make_log(tmp_path, 6, every=5)   # anchor file next to the database: the default
    monkeypatch.setenv("CORE_DATABASE_URL", url)
    monkeypatch.setenv("CORE_AUDIT_KEY", KEY.decode())
    monkeypatch.setenv("CORE_AUDIT_ANCHOR_EVERY", "5")
    assert audit.main(["verify"]) == 0
    assert "anchored at seq=5" in capsys.readouterr().out
    monkeypatch.setenv("CORE_AUDIT_KEY", "some-other-key")
    get_settings.cache_clear()
    assert audit.main(["verify"]) == 1


def test_concurrent_writers_each_get_their_own_seq(tmp_path):
    engine, log, _, _ = make_log(tmp_path, every=25)

    def write(worker):
        for i in range(15):
            log.append(actor=f"w{worker}", action="a", subject="s", outcome=str(i))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(8)))
    report = audit.verify(engine, KEY, AnchorFile(tmp_path / "audit-anchor.log").read())
    assert report.ok and report.records == 120 and report.anchored_seq == 100
