"""Resolves the gateway's PII tokens back to the clear ID or phone number.

The gateway stores `anju:vault:<token>` → clear value (plain string, TTL 1800 s) before text
reaches Rasa; the key format must stay equal to gateway/keys.py:vault (a test checks it).
"""
from __future__ import annotations

import re
from typing import Optional, Protocol

from redis.exceptions import RedisError

from fund.errors import TokenExpired, VaultUnavailable

TOKEN = re.compile(r"^pii_(id|ph)_[0-9a-f]{16}$")


class KeyValueStore(Protocol):
    def get(self, name: str) -> Optional[bytes | str]: ...


def vault_key(token: str) -> str:
    return f"anju:vault:{token}"


def is_token(value: str) -> bool:
    return bool(TOKEN.match(value.strip()))


class Vault:
    def __init__(self, store: KeyValueStore):
        self._store = store

    def resolve(self, value: str) -> str:
        """Returns `value` unchanged unless it is a token; an unknown or expired token raises."""
        value = value.strip()
        if not is_token(value):
            return value
        try:
            clear = self._store.get(vault_key(value))
        except RedisError as exc:
            raise VaultUnavailable(str(exc)) from exc
        if clear is None:
            raise TokenExpired(value)
        return clear.decode() if isinstance(clear, bytes) else str(clear)
