"""Masking of personal data in anything shown or logged: one helper for the whole gateway."""
from __future__ import annotations

import re

# 18-digit resident ID (last char may be X) and mainland mobile numbers, not inside longer digit runs.
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3})([0-9Xx])(?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_id_number(value: str) -> str:
    """340***********1234: first 3 and last 4 characters kept."""
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str) -> str:
    """138****5678."""
    return value[:3] + "****" + value[-4:]


def mask_text(text: str) -> str:
    """Masks every ID number and mobile number found in free text."""
    text = ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    return MOBILE.sub(lambda m: mask_phone(m.group(0)), text)
