"""Masking of personal data in everything the core returns for display or writes to logs."""
from __future__ import annotations


def mask_id_number(value: str) -> str:
    """340***********1234: first 3 and last 4 characters kept."""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str) -> str:
    """138****5678."""
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "****" + value[-4:]


def mask_name(value: str) -> str:
    """张*明 / 李*: the family name and, for three or more characters, the last one."""
    if len(value) <= 1:
        return value
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]


def mask_org(value: str) -> str:
    """Keeps the first two and last two characters of an employer's name."""
    if len(value) <= 4:
        return value[:1] + "*" * (len(value) - 1)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def mask_card(value: str) -> str:
    """6217 **** **** 1234 style: the first four and last four digits of a bank card."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) <= 8:
        return "*" * len(digits)
    return f"{digits[:4]} **** **** {digits[-4:]}"
