"""Append-only audit log as a keyed hash chain, and `python -m fund.audit verify|anchor|head`.

Each record's hash is HMAC-SHA256 (key CORE_AUDIT_KEY) over the canonical JSON of its fields
including prev_hash: changing, inserting or deleting a record breaks every later link, and
without the key nobody can recompute a chain that verifies. Deleting records from the tail
leaves a chain that still links up; the head anchored outside the database (fund.anchor,
every CORE_AUDIT_ANCHOR_EVERY records and at clean shutdown) reveals it.

A record is written in the same transaction as the change it records (append_in), so the two
commit or roll back together. Subjects are masked before they get here: the log holds no
clear personal data.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from fund.anchor import Anchor, AnchorFile, AnchorFileError
from fund.db import lock_for_write, write_transaction
from fund.errors import IdempotencyConflict
from fund.models import AuditIdempotencyKey, AuditRecord

logger = logging.getLogger(__name__)
GENESIS = "0" * 64
FIELDS = ("seq", "timestamp", "actor", "action", "subject", "outcome", "prev_hash")
LIMITS = {"actor": 80, "action": 80, "subject": 80, "outcome": 200}
_PENDING_ANCHOR = "fund.audit.pending_anchor"   # keys in Session.info
_ANCHOR_HOOKED = "fund.audit.anchor_hooked"


def canonical(fields: Mapping) -> bytes:
    return json.dumps({k: fields[k] for k in FIELDS}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def record_hash(fields: Mapping, key: bytes) -> str:
    return hmac.new(key, canonical(fields), hashlib.sha256).hexdigest()


def timestamp(at: dt.datetime) -> str:
    """Naive UTC, microseconds: an aware time is converted first."""
    if at.tzinfo is not None:
        at = at.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Appended:
    seq: int
    duplicate: bool = False   # the idempotency key was seen before: nothing new was written


class AuditLog:
    """Appends are serialised by lock_for_write (SQLite BEGIN IMMEDIATE, a PostgreSQL advisory
    lock) and, on other databases, by the primary key on seq plus a retried unit of work."""

    def __init__(self, sessions: sessionmaker[Session], key: bytes, anchor: Optional[AnchorFile] = None,
                 anchor_every: int = 50):
        if not key:
            raise ValueError("the audit chain needs a non-empty HMAC key")
        self._sessions = sessions
        self._key = key
        self._anchor = anchor
        self._anchor_every = anchor_every

    def append(self, *, actor: str, action: str, subject: str, outcome: str,
               at: Optional[dt.datetime] = None, idempotency_key: Optional[str] = None) -> Appended:
        """One record in a transaction of its own (a call that changed nothing else)."""
        return write_transaction(self._sessions, lambda session: self.append_in(
            session, actor=actor, action=action, subject=subject, outcome=outcome, at=at,
            idempotency_key=idempotency_key))

    def append_in(self, session: Session, *, actor: str, action: str, subject: str, outcome: str,
                  at: Optional[dt.datetime] = None, idempotency_key: Optional[str] = None) -> Appended:
        """Adds a record to the caller's transaction: it commits or rolls back with the change."""
        lock_for_write(session)
        values = {"actor": actor, "action": action, "subject": subject, "outcome": outcome}
        values = {k: v[:LIMITS[k]] for k, v in values.items()}
        stamp = timestamp(at or dt.datetime.now(dt.timezone.utc))
        if idempotency_key is not None:
            seen = session.get(AuditIdempotencyKey, idempotency_key)
            if seen is not None:
                return Appended(self._same_entry(session, seen.seq, values), duplicate=True)
        head = session.execute(select(AuditRecord.seq, AuditRecord.hash)
                               .order_by(AuditRecord.seq.desc()).limit(1)).first()
        fields = {"seq": head.seq + 1 if head else 1, "timestamp": stamp, **values,
                  "prev_hash": head.hash if head else GENESIS}
        fields["hash"] = record_hash(fields, self._key)
        session.add(AuditRecord(**fields))
        session.flush()  # a taken seq fails here, inside the unit of work that write_transaction retries
        if idempotency_key is not None:
            session.add(AuditIdempotencyKey(key=idempotency_key, seq=fields["seq"]))
            session.flush()
        if self._anchor is not None and fields["seq"] % self._anchor_every == 0:
            self._anchor_after_commit(session, fields["seq"], fields["hash"])
        logger.info("audit.record.added seq=%s action=%s", fields["seq"], values["action"])
        return Appended(fields["seq"])

    @staticmethod
    def _same_entry(session: Session, seq: int, values: dict) -> int:
        """A repeated key must repeat the entry (its time aside: a retry may not resend it)."""
        record = session.get(AuditRecord, seq)
        differs = [k for k, v in values.items() if getattr(record, k) != v]
        if differs:
            raise IdempotencyConflict(seq, differs)
        return seq

    # --- anchors ---------------------------------------------------------------------------
    def _anchor_after_commit(self, session: Session, seq: int, record_hash_: str) -> None:
        """Anchors only what committed: an anchor of a rolled-back record would look like truncation."""
        if not session.info.get(_ANCHOR_HOOKED):
            session.info[_ANCHOR_HOOKED] = True
            event.listen(session, "after_commit", self._write_pending_anchor)
            event.listen(session, "after_rollback", lambda s: s.info.pop(_PENDING_ANCHOR, None))
        session.info[_PENDING_ANCHOR] = (seq, record_hash_)

    def _write_pending_anchor(self, session: Session) -> None:
        pending = session.info.pop(_PENDING_ANCHOR, None)
        if pending is None:
            return
        try:
            self._anchor.write(*pending)
        except OSError:  # the record is committed; the next anchor covers it
            logger.exception("audit.anchor.failed seq=%s", pending[0])

    def anchor_head(self) -> Optional[Anchor]:
        """Anchors the newest record now (clean shutdown, `python -m fund.audit anchor`)."""
        if self._anchor is None:
            return None
        with self._sessions() as session:
            head = session.execute(select(AuditRecord.seq, AuditRecord.hash)
                                   .order_by(AuditRecord.seq.desc()).limit(1)).first()
        if head is None:
            return None
        last = self._anchor.last()
        if last is not None and last.seq == head.seq and last.hash == head.hash:
            return last
        return self._anchor.write(head.seq, head.hash)


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int
    first_broken_seq: Optional[int] = None
    reason: str = ""
    anchored_seq: Optional[int] = None   # the newest anchor the chain was checked against


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


def verify(engine: Engine, key: bytes, anchors: Sequence[Anchor] = ()) -> VerifyReport:
    """Walks the chain from the start and stops at the first record that does not fit, then
    checks that the chain reaches every anchor (truncation)."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    by_seq: dict[int, list[Anchor]] = {}
    for anchor in anchors:
        by_seq.setdefault(anchor.seq, []).append(anchor)
    expected_seq, prev_hash, count = 1, GENESIS, 0
    for row in _rows(engine):
        seq = row["seq"]
        if seq != expected_seq:
            return VerifyReport(False, count, expected_seq, f"record {expected_seq} is missing (next is {seq})")
        if row["prev_hash"] != prev_hash:
            return VerifyReport(False, count, seq, "prev_hash does not match the previous record's hash")
        digest = mac.copy()
        digest.update(canonical(row))
        if not hmac.compare_digest(digest.hexdigest(), row["hash"]):
            return VerifyReport(False, count, seq, "contents do not match the record's HMAC (changed, or another key)")
        for anchor in by_seq.get(seq, ()):
            if anchor.hash != row["hash"]:
                return VerifyReport(False, count, seq, f"record {seq} is not the one anchored at {anchor.at}")
        prev_hash, expected_seq, count = row["hash"], expected_seq + 1, count + 1
    newest = max(anchors, key=lambda a: a.seq) if anchors else None
    if newest is not None and newest.seq > count:
        return VerifyReport(False, count, count + 1, f"the chain ends at seq={count} but seq={newest.seq} was "
                                                     f"anchored at {newest.at}: records were removed from the end")
    return VerifyReport(True, count, anchored_seq=newest.seq if newest else None)


# --- command line ------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fund.audit", description="Audit chain tools. Settings come from the environment "
        "(CORE_DATABASE_URL, CORE_AUDIT_KEY, CORE_AUDIT_ANCHOR_PATH); flags override them.",
        epilog="verify: checks every record's HMAC and link, and that the chain reaches every anchored head; "
               "exit 1 when it does not. anchor: verifies, then appends the current head to the anchor file. "
               "head: prints the newest record's seq and hash.")
    parser.add_argument("command", choices=["verify", "anchor", "head"])
    parser.add_argument("--database-url", default=None, help="default: CORE_DATABASE_URL")
    parser.add_argument("--key-file", type=Path, default=None,
                        help="file holding the HMAC key (default: CORE_AUDIT_KEY); one trailing newline is ignored")
    parser.add_argument("--anchor-path", type=Path, default=None,
                        help="anchor file (default: CORE_AUDIT_ANCHOR_PATH, else audit-anchor.log next to the database)")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    from pydantic import ValidationError

    from fund.db import make_engine
    from fund.settings import CoreSettings, anchor_path_for, describe, get_settings

    args = _parser().parse_args(argv)
    settings = None
    if args.database_url is None or (args.command != "head" and args.key_file is None):
        try:
            settings = get_settings()
        except ValidationError as exc:
            print(f"settings refused: {describe(exc)}", file=sys.stderr)
            return 2
    database_url = args.database_url or settings.core_database_url
    engine = make_engine(database_url)
    if args.command == "head":
        with engine.connect() as conn:
            head = conn.execute(select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)).first()
        print(f"seq={head.seq} hash={head.hash}" if head else "empty")
        return 0

    if args.key_file is not None:
        key = args.key_file.read_bytes().removesuffix(b"\n")
    else:
        key = settings.core_audit_key.get_secret_value().encode("utf-8")
    if args.anchor_path is not None:
        anchor_file = AnchorFile(args.anchor_path)
    elif settings is not None and database_url == settings.core_database_url:
        anchor_file = AnchorFile(settings.core_audit_anchor_path)
    else:  # another database than the settings': its own anchor next to it
        anchor_file = AnchorFile(anchor_path_for(database_url))
    every = settings.core_audit_anchor_every if settings else CoreSettings.model_fields["core_audit_anchor_every"].default
    try:
        anchors = anchor_file.read()
    except AnchorFileError as exc:
        print(f"audit anchors UNREADABLE: {exc}")
        return 1
    started = time.perf_counter()
    report = verify(engine, key, anchors)
    elapsed = time.perf_counter() - started
    if not report.ok:
        print(f"audit chain BROKEN at seq={report.first_broken_seq}: {report.reason} "
              f"({report.records} records before it are intact)")
        return 1
    if not anchors and report.records >= every and args.command == "verify":
        print(f"audit chain UNANCHORED: {report.records} records but no anchor in {anchor_file.path} "
              f"(one is written every {every} records), so removal from the end cannot be ruled out")
        return 1
    anchored = (f", reaches the head anchored at seq={report.anchored_seq} ({anchor_file.path})"
                if report.anchored_seq else f", no anchor yet in {anchor_file.path}")
    print(f"audit chain ok: {report.records} records verified in {elapsed:.2f} s{anchored}")
    if args.command == "anchor":
        anchor = AuditLog(sessionmaker(engine), key, anchor_file).anchor_head()
        print(f"anchored seq={anchor.seq} hash={anchor.hash} in {anchor_file.path}" if anchor else "empty: nothing to anchor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
