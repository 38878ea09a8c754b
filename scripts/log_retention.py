"""Log retention for the run command: each process log (var/log/<name>.log) is archived once a day
and archives older than LOG_RETENTION_DAYS (default 183, six months) are deleted.

Processes keep their log open in append mode, so a log is archived by copying it to
var/log/archive/<name>-<YYYYMMDD>.log.gz and truncating it in place (what logrotate calls
copytruncate): a line written between the copy and the truncation can be lost, never a file's
worth. Logs hold masked data only (the log scan in the tests checks that), so archives may be
kept as long as a centre's rules ask.
"""
from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_RETENTION_DAYS = 183
ARCHIVE = re.compile(r"^(?P<name>.+)-(?P<day>\d{8})\.log\.gz$")


def retention_days() -> int:
    """LOG_RETENTION_DAYS from the environment; at least 1."""
    value = int(os.environ.get("LOG_RETENTION_DAYS", DEFAULT_RETENTION_DAYS))
    if value < 1:
        raise ValueError(f"LOG_RETENTION_DAYS must be at least 1, got {value}")
    return value


@dataclass
class Rotation:
    archived: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def rotate(log_dir: Path, today: dt.date, keep_days: int) -> Rotation:
    """Archives every non-empty log not yet archived today, then deletes archives past `keep_days`."""
    done = Rotation()
    archive_dir = log_dir / "archive"
    archive_dir.mkdir(parents=True, exist_ok=True)
    stamp = today.strftime("%Y%m%d")
    for log in sorted(log_dir.glob("*.log")):
        target = archive_dir / f"{log.stem}-{stamp}.log.gz"
        if target.exists() or log.stat().st_size == 0:
            continue
        with open(log, "rb") as source, gzip.open(target, "wb") as packed:
            shutil.copyfileobj(source, packed)
        with open(log, "r+b") as live:
            live.truncate(0)
        done.archived.append(target.name)
    oldest = today - dt.timedelta(days=keep_days)
    for archive in sorted(archive_dir.glob("*.log.gz")):
        match = ARCHIVE.match(archive.name)
        if match and dt.datetime.strptime(match.group("day"), "%Y%m%d").date() < oldest:
            archive.unlink()
            done.deleted.append(archive.name)
    return done
