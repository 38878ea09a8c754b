"""Every redis key the gateway uses, built here: `anju:<area>:<id>`, with TTLs next to them.

Add new keys as functions in this module (never build key strings elsewhere).
"""
from __future__ import annotations

VAULT_TTL_S = 30 * 60


def vault(token: str) -> str:
    """Clear value of a PII token (ID or phone number) that replaced it in text sent to Rasa."""
    return f"anju:vault:{token}"
