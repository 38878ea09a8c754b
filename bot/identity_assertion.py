"""Signed identity assertions: how a channel identity reaches the actions.

The gateway knows who a citizen is on a channel (a WeChat openid, later a verified phone
caller) and puts a short-lived assertion of it into the message metadata; the actions
trust only what verifies with the shared key and names the conversation's own sender.
Standard library only: the gateway (app venv) signs, the actions (Rasa venv) verify.

Format: `v1.<base64url JSON>.<base64url HMAC-SHA256 over "v1.<base64url JSON>">`, the JSON
holding sub (the Rasa sender_id), kind, value, iat and exp (Unix seconds).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Optional

VERSION = "v1"
MAX_TOKEN_CHARS = 2048
MAX_TTL_S = 3600
CLOCK_SKEW_S = 30
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Assertion:
    sub: str
    kind: str
    value: str
    iat: int
    exp: int


class InvalidAssertion(ValueError):
    """The token cannot be trusted; `reason` names why (never the token's content)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _B64URL.match(text):
        raise InvalidAssertion("malformed")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidAssertion("malformed") from exc


def _mac(key: bytes, signed_part: str) -> bytes:
    return hmac.new(key, signed_part.encode("ascii"), hashlib.sha256).digest()


def sign(key: bytes, sender_id: str, kind: str, value: str, ttl_s: int = 300,
         now: Optional[float] = None) -> str:
    """An assertion that `sender_id` is `kind`=`value`, valid for `ttl_s` seconds."""
    if not key:
        raise ValueError("an identity assertion needs a non-empty key")
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be between 1 and {MAX_TTL_S}, got {ttl_s}")
    iat = int(time.time() if now is None else now)
    payload = {"sub": sender_id, "kind": kind, "value": value, "iat": iat, "exp": iat + int(ttl_s)}
    body = _b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode())
    signed_part = f"{VERSION}.{body}"
    return f"{signed_part}.{_b64encode(_mac(key, signed_part))}"


def decode(key: bytes, token: object, sender_id: str, now: Optional[float] = None) -> Assertion:
    """The verified assertion, or InvalidAssertion with a reason: no_key, malformed, too_long,
    unknown_version, bad_mac, wrong_sender, ttl_too_long, not_yet_valid, expired."""
    if not key:
        raise InvalidAssertion("no_key")
    if not isinstance(token, str):
        raise InvalidAssertion("malformed")
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidAssertion("too_long")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidAssertion("malformed")
    version, body, mac = parts
    if version != VERSION:
        raise InvalidAssertion("unknown_version")
    if not hmac.compare_digest(_b64decode(mac), _mac(key, f"{version}.{body}")):
        raise InvalidAssertion("bad_mac")
    try:
        payload = json.loads(_b64decode(body))
    except (UnicodeDecodeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise InvalidAssertion("malformed") from exc
    if not isinstance(payload, dict):
        raise InvalidAssertion("malformed")
    strings = [payload.get(k) for k in ("sub", "kind", "value")]
    times = [payload.get(k) for k in ("iat", "exp")]
    if not all(isinstance(s, str) for s in strings) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in times):
        raise InvalidAssertion("malformed")
    assertion = Assertion(*strings, *times)
    if not hmac.compare_digest(assertion.sub.encode(), str(sender_id).encode()):
        raise InvalidAssertion("wrong_sender")
    current = time.time() if now is None else now
    if assertion.exp - assertion.iat > MAX_TTL_S:
        raise InvalidAssertion("ttl_too_long")
    if assertion.iat > current + CLOCK_SKEW_S:
        raise InvalidAssertion("not_yet_valid")
    if current >= assertion.exp:
        raise InvalidAssertion("expired")
    return assertion


def verify(key: bytes, token: object, sender_id: str, now: Optional[float] = None) -> Optional[Assertion]:
    """The verified assertion, or None for anything that does not verify (never raises on bad input)."""
    try:
        return decode(key, token, sender_id, now)
    except InvalidAssertion:
        return None
