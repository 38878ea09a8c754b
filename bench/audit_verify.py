"""Times `fund.audit.verify` over 100,000 chained records in a temp SQLite database.

Records are built with the same keyed hashing (HMAC-SHA256) as AuditLog.append and
bulk-inserted (appending 100,000 one transaction at a time would time SQLite commits, not
verification); a sample of real appends (write lock, HMAC, one transaction each) is timed
separately. Prints figures; not a test.
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from fund import audit
from fund.db import create_schema, make_engine, make_session_factory
from fund.models import AuditRecord

KEY = b"bench-audit-key"  # any key: the bench builds and verifies its own chain

def build(engine, count: int) -> None:
    prev, start, batch = audit.GENESIS, dt.datetime(2026, 11, 23, 8, 0), []
    with engine.begin() as conn:
        for seq in range(1, count + 1):
            fields = {"seq": seq, "timestamp": (start + dt.timedelta(seconds=seq)).isoformat(timespec="microseconds"),
                      "actor": f"web:{seq % 977}", "action": "GET /persons/{person_ref}/balance",
                      "subject": "320***********0454", "outcome": "200", "prev_hash": prev}
            prev = audit.record_hash(fields, KEY)
            batch.append({**fields, "hash": prev})
            if len(batch) == 10_000:
                conn.execute(insert(AuditRecord), batch)
                batch = []
        if batch:
            conn.execute(insert(AuditRecord), batch)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--appends", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'audit.db'}")
        create_schema(engine)
        started = time.perf_counter()
        build(engine, args.records)
        built = time.perf_counter() - started
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            report = audit.verify(engine, KEY)
            runs.append(time.perf_counter() - started)
            assert report.ok and report.records == args.records, report
        log = audit.AuditLog(make_session_factory(engine), KEY)
        started = time.perf_counter()
        for i in range(args.appends):
            log.append(actor="bench", action="POST /identity/challenges", subject="-", outcome="201")
        appended = time.perf_counter() - started
        assert audit.verify(engine, KEY).ok
        engine.dispose()
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, SQLite file (WAL)")
    print(f"built {args.records:,} chained records in {built:.2f} s")
    print(f"verify {args.records:,} records: best {min(runs):.2f} s, runs {', '.join(f'{r:.2f}' for r in runs)} s "
          f"({args.records / min(runs):,.0f} records/s)")
    print(f"AuditLog.append, one transaction each: {args.appends:,} in {appended:.2f} s "
          f"({appended / args.appends * 1000:.2f} ms per record)")


if __name__ == "__main__":
    main()
