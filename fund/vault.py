"""Resolves the gateway's PII tokens back to the clear ID number, phone number, name or bank card.

The gateway stores `anju:vault:<token>` → clear value (plain string, TTL 1800 s) before text
reaches Rasa; the key format must stay equal to gateway/keys.py:vault (a test checks it).
Tokens are `pii_<kind>_<16 hex>`: id (ID number), ph (phone), nm (name), cd (bank card).
"""
from __future__ import annotations

import re
from typing import Literal, Optional, Protocol

from redis.exceptions import RedisError

from fund.errors import InvalidInput, TokenExpired, VaultUnavailable

Kind = Literal["id", "ph", "nm", "cd"]
TOKEN = re.compile(r"^pii_(id|ph|nm|cd)_[0-9a-f]{16}$")


class KeyValueStore(Protocol):
    def get(self, name: str) -> Optional[bytes | str]: ...


class WrongTokenKind(InvalidInput):
    """A token of another kind where this field expects one kind (say, a phone token as a name)."""


def vault_key(token: str) -> str:
    return f"anju:vault:{token}"


def is_token(value: str) -> bool:
    return bool(TOKEN.match(value.strip()))


class Vault:
    def __init__(self, store: KeyValueStore):
        self._store = store

    def resolve(self, value: str, kind: Optional[Kind] = None) -> str:
        """Returns `value` unchanged unless it is a token; an unknown or expired token raises, and
        so does a token of another kind than `kind` when one is named."""
        value = value.strip()
        match = TOKEN.match(value)
        if match is None:
            return value
        if kind is not None and match[1] != kind:
            raise WrongTokenKind(f"expected a pii_{kind}_ token, got pii_{match[1]}_")
        try:
            clear = self._store.get(vault_key(value))
        except RedisError as exc:
            raise VaultUnavailable(str(exc)) from exc
        if clear is None:
            raise TokenExpired(value)
        return clear.decode() if isinstance(clear, bytes) else str(clear)
