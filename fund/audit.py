"""Append-only audit log as a hash chain, and `python -m fund.audit verify`.

Each record's hash is sha256 over the canonical JSON of its fields including prev_hash,
so changing, inserting or deleting any record breaks every later link. Truncating the
tail is only detectable against a head published elsewhere (`python -m fund.audit head`).
Subjects are masked before they get here: the log holds no clear personal data.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Optional

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fund.models import AuditRecord

logger = logging.getLogger(__name__)
GENESIS = "0" * 64
FIELDS = ("seq", "timestamp", "actor", "action", "subject", "outcome", "prev_hash")


def record_hash(fields: dict) -> str:
    canonical = json.dumps({k: fields[k] for k in FIELDS}, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AuditLog:
    """Appends are serialised in-process by a lock and across processes by the primary key
    on seq (a conflicting writer retries on the new head)."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions
        self._lock = threading.Lock()

    def append(self, *, actor: str, action: str, subject: str, outcome: str,
               at: Optional[dt.datetime] = None) -> int:
        at = at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with self._lock:
            for _attempt in range(5):
                try:
                    return self._append_once(actor[:80], action[:80], subject[:80], outcome[:200], at)
                except IntegrityError:
                    continue
        raise RuntimeError("audit append kept conflicting with other writers")

    def _append_once(self, actor: str, action: str, subject: str, outcome: str, at: dt.datetime) -> int:
        with self._sessions.begin() as session:
            head = session.execute(select(AuditRecord.seq, AuditRecord.hash)
                                   .order_by(AuditRecord.seq.desc()).limit(1)).first()
            fields = {"seq": head.seq + 1 if head else 1, "timestamp": at.isoformat(timespec="microseconds"),
                      "actor": actor, "action": action, "subject": subject, "outcome": outcome,
                      "prev_hash": head.hash if head else GENESIS}
            session.add(AuditRecord(**fields, hash=record_hash(fields)))
        logger.info("audit.record.appended seq=%s action=%s", fields["seq"], action)
        return fields["seq"]


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int
    first_broken_seq: Optional[int] = None
    reason: str = ""


def _rows(engine: Engine, batch: int = 5000) -> Iterator:
    last = 0
    with engine.connect() as conn:
        while True:
            rows = conn.execute(select(AuditRecord.__table__).where(AuditRecord.seq > last)
                                .order_by(AuditRecord.seq).limit(batch)).mappings().all()
            if not rows:
                return
            yield from rows
            last = rows[-1]["seq"]


def verify(engine: Engine) -> VerifyReport:
    """Walks the chain from the start and stops at the first record that does not fit."""
    expected_seq, prev_hash, count = 1, GENESIS, 0
    for row in _rows(engine):
        if row["seq"] != expected_seq:
            return VerifyReport(False, count, expected_seq, f"record {expected_seq} is missing (next is {row['seq']})")
        if row["prev_hash"] != prev_hash:
            return VerifyReport(False, count, row["seq"], "prev_hash does not match the previous record's hash")
        if record_hash(row) != row["hash"]:
            return VerifyReport(False, count, row["seq"], "contents do not match the record's hash")
        prev_hash, expected_seq, count = row["hash"], expected_seq + 1, count + 1
    return VerifyReport(True, count)


def main(argv: Optional[list[str]] = None) -> int:
    from fund.db import make_engine
    from fund.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m fund.audit", description="Audit hash chain tools")
    parser.add_argument("command", choices=["verify", "head"])
    parser.add_argument("--database-url", default=None, help="default: CORE_DATABASE_URL")
    args = parser.parse_args(argv)
    engine = make_engine(args.database_url or get_settings().core_database_url)
    if args.command == "head":
        with engine.connect() as conn:
            head = conn.execute(select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)).first()
        print(f"seq={head.seq} hash={head.hash}" if head else "empty")
        return 0
    started = time.perf_counter()
    report = verify(engine)
    elapsed = time.perf_counter() - started
    if report.ok:
        print(f"audit chain ok: {report.records} records verified in {elapsed:.2f} s")
        return 0
    print(f"audit chain BROKEN at seq={report.first_broken_seq}: {report.reason} "
          f"({report.records} records before it are intact)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
