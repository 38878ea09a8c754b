"""Masking of personal data in anything shown or logged: the gateway's name for bot/pii.py.

Every pattern and mask lives in bot/pii.py (shared with the actions); this module keeps the
names the gateway imports (mask_text, mask_id_number, mask_phone).
"""
from __future__ import annotations

from bot.pii import mask_card, mask_id_number, mask_name, mask_phone, mask_text

__all__ = ["mask_card", "mask_id_number", "mask_name", "mask_phone", "mask_text"]
