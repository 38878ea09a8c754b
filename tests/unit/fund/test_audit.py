"""Audit hash chain: appends link up; any change, insertion or deletion is found."""
from sqlalchemy import delete, update

from fund import audit
from fund.db import create_schema, make_engine, make_session_factory
from fund.models import AuditRecord


def make_log(tmp_path, n=0):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    engine = make_engine(url)
    create_schema(engine)
    log = audit.AuditLog(make_session_factory(engine))
    for i in range(n):
        log.append(actor=f"web:{i}", action="GET /persons/{person_ref}/balance", subject="320***********0454",
                   outcome="200")
    return engine, log, url


def test_chain_of_appends_verifies(tmp_path):
    engine, log, _ = make_log(tmp_path, 20)
    assert log.append(actor="a", action="b", subject="c", outcome="d") == 21
    report = audit.verify(engine)
    assert report.ok and report.records == 21


def test_empty_chain_is_valid(tmp_path):
    engine, _, _ = make_log(tmp_path)
    assert audit.verify(engine).ok


def test_changed_record_is_reported_first(tmp_path):
    engine, _, _ = make_log(tmp_path, 10)
    with engine.begin() as conn:
        conn.execute(update(AuditRecord).where(AuditRecord.seq == 4).values(outcome="200 ok"))
    report = audit.verify(engine)
    assert not report.ok and report.first_broken_seq == 4 and report.records == 3


def test_rehashed_forgery_breaks_the_next_link(tmp_path):
    engine, _, _ = make_log(tmp_path, 10)
    with engine.begin() as conn:
        row = conn.execute(AuditRecord.__table__.select().where(AuditRecord.seq == 6)).mappings().one()
        forged = {**row, "subject": "forged"}
        conn.execute(update(AuditRecord).where(AuditRecord.seq == 6)
                     .values(subject="forged", hash=audit.record_hash(forged)))
    assert audit.verify(engine).first_broken_seq == 7


def test_deleted_record_is_reported(tmp_path):
    engine, _, _ = make_log(tmp_path, 10)
    with engine.begin() as conn:
        conn.execute(delete(AuditRecord).where(AuditRecord.seq == 3))
    report = audit.verify(engine)
    assert not report.ok and report.first_broken_seq == 3


def test_cli_exit_codes(tmp_path, capsys):
    engine, _, url = make_log(tmp_path, 5)
    assert audit.main(["verify", "--database-url", url]) == 0
    with engine.begin() as conn:
        conn.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor="x"))
    assert audit.main(["verify", "--database-url", url]) == 1
    assert "seq=2" in capsys.readouterr().out
