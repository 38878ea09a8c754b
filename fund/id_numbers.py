"""Resident ID numbers (GB 11643-1999): format, checksum, birth date, age.

The core accepts an ID number only after these checks, so a typo is caught before a
lookup and never counts as a failed identity attempt against someone else.
"""
from __future__ import annotations

import datetime as dt
import re

from fund.errors import InvalidInput

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
FORMAT = re.compile(r"^\d{17}[\dX]$")


class InvalidIdNumber(InvalidInput):
    """The ID number is not a well-formed 18-character resident ID."""

    code = "invalid_id_format"


class InvalidIdChecksum(InvalidIdNumber):
    """Well formed, but the 18th character does not match the GB 11643 checksum."""

    code = "invalid_id_checksum"


def check_char(first17: str) -> str:
    """The 18th character for the first 17 digits."""
    return CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, WEIGHTS)) % 11]


def normalize(value: str) -> str:
    """Upper-cases a trailing x and strips spaces, as people type them."""
    return value.strip().replace(" ", "").upper()


def validate(value: str) -> str:
    """Returns the normalised ID number or raises InvalidIdNumber / InvalidIdChecksum."""
    if not isinstance(value, str):
        raise InvalidIdNumber("身份证号必须是文字")
    number = normalize(value)
    if not FORMAT.match(number):
        raise InvalidIdNumber("身份证号应为18位，前17位是数字，最后一位是数字或X")
    try:
        birth_date(number)
    except ValueError as exc:
        raise InvalidIdNumber("身份证号中的出生日期无效") from exc
    if check_char(number[:17]) != number[17]:
        raise InvalidIdChecksum("身份证号校验位不正确，请核对后重新输入")
    return number


def birth_date(number: str) -> dt.date:
    """Characters 7–14 are YYYYMMDD; raises ValueError for an impossible date."""
    born = dt.datetime.strptime(number[6:14], "%Y%m%d").date()
    if born.year < 1900:
        raise ValueError("birth year before 1900")
    return born


def age_on(born: dt.date, today: dt.date) -> int:
    """Whole years completed on `today` (a 29 February birthday counts from 1 March)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def make_id_number(region: str, born: dt.date, sequence: int) -> str:
    """Builds a valid ID number (for seeding demo persons): 6-digit region, birth date,
    3-digit sequence (odd for men, even for women), checksum."""
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_char(first17)
