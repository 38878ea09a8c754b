"""The audit chain's head, anchored outside the database in an append-only text file.

One line per anchor, `<seq> <hash> <iso time>`, each written with one O_APPEND write and
fsync'ed. Someone who can rewrite the database can delete records from the tail and leave
a shorter chain that still links up; the anchors written before say how long it was.
Ship the file elsewhere (or make it append-only, `chattr +a`) to keep it out of their reach.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

logger = logging.getLogger(__name__)
LINE = re.compile(r"^(\d+) ([0-9a-f]{64}) (\S+)$")


class AnchorFileError(ValueError):
    """A line of the anchor file is not `<seq> <hash> <iso time>`."""


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    at: str


class AnchorFile:
    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, seq: int, record_hash: str, at: Optional[dt.datetime] = None) -> Anchor:
        at_text = (at or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
        anchor = Anchor(seq, record_hash, at_text)
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, f"{seq} {record_hash} {at_text}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:  # the new directory entry must survive a crash too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        logger.info("audit.anchor.written seq=%s", seq)
        return anchor

    def read(self) -> list[Anchor]:
        """Every anchor in the file, oldest first; no file means no anchors."""
        if not self.path.exists():
            return []
        anchors = []
        for number, line in enumerate(self.path.read_text(encoding="ascii").splitlines(), start=1):
            if not line.strip():
                continue
            match = LINE.match(line.strip())
            if match is None:
                raise AnchorFileError(f"{self.path} line {number} is not '<seq> <hash> <iso time>': {line[:100]!r}")
            anchors.append(Anchor(int(match[1]), match[2], match[3]))
        return anchors

    def last(self) -> Optional[Anchor]:
        anchors = self.read()
        return max(anchors, key=lambda a: a.seq) if anchors else None
