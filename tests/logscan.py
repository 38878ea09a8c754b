"""Finds unmasked personal data in log files: the last line of defence for masking.

Independent of the product's detector (bot/pii.py) on purpose, so it can catch what masking
misses. An ID number counts when it passes the GB 11643 checksum (so timestamps and other
long digit runs are not mistaken for one); a mobile number when it stands alone, not inside
a longer run of letters or digits (tokens and hashes are hex). Besides, PLANTED holds values
the tests type into the chat (names, a card number, a spaced ID): any of them found verbatim,
or as its bare digits, in a log is a leak.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fund.id_numbers import check_char

ID_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[0-9Xx])(?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<![0-9A-Za-z])(1[3-9]\d{9})(?![0-9A-Za-z])")
# Typed by tests/integration and tests/security (demo persons of fund/DEMO_PERSONS.md).
PLANTED = ("韦娜伟", "魏红霞", "水悦华", "谢翔", "6222 0212 3456 7890 123", "3204 0219 9403 1204 54")
PLANTED_DIGITS = tuple(re.sub(r"\D", "", v) for v in PLANTED if re.sub(r"\D", "", v))


@dataclass(frozen=True)
class Finding:
    path: Path
    line_no: int
    kind: str

    def __str__(self) -> str:  # never echo the value itself
        return f"{self.path}:{self.line_no}: unmasked {self.kind}"


def scan_text(text: str, path: Path) -> list[Finding]:
    findings = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if any(check_char(m.group(1)[:17]) == m.group(1)[17].upper() for m in ID_CANDIDATE.finditer(line)):
            findings.append(Finding(path, line_no, "ID number"))
        if MOBILE.search(line):
            findings.append(Finding(path, line_no, "mobile number"))
        if any(value in line for value in PLANTED) or any(digits in line for digits in PLANTED_DIGITS):
            findings.append(Finding(path, line_no, "planted value"))
    return findings


def scan_dir(root: Path) -> tuple[int, list[Finding]]:
    """Scans every *.log and *.txt file below root; returns (files scanned, findings)."""
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix in {".log", ".txt"}]
    findings: list[Finding] = []
    for path in files:
        findings.extend(scan_text(path.read_text(encoding="utf-8", errors="replace"), path))
    return len(files), findings
