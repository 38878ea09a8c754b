"""PII vault: ID and mobile numbers leave the citizen's text before it reaches Rasa.

Rasa's tracker keeps every message for good, so the gateway swaps each 18-character
ID-like string and each mainland mobile number for a random token (`pii_id_<16 hex>`,
`pii_ph_<16 hex>`) and keeps the clear value in redis for a short time under
`keys.vault(token)`. The core resolves tokens itself; nothing ever turns a token back
into clear text for display. Any checksum is accepted here: the core validates it and
tells the citizen what is wrong.
"""
from __future__ import annotations

import logging
import re
import secrets

from gateway import keys

logger = logging.getLogger(__name__)

ID_TOKEN_PREFIX = "pii_id_"
PHONE_TOKEN_PREFIX = "pii_ph_"

_FULL_WIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789XX")
_DIGIT = "[0-9０-９]"
# Not glued to letters, digits or "_" (so a token's own hex is never matched again).
_EDGE_BEFORE = r"(?<![0-9A-Za-z_０-９])"
_EDGE_AFTER = r"(?![0-9A-Za-z_０-９])"
ID_LIKE = re.compile(_EDGE_BEFORE + f"{_DIGIT}{{17}}[0-9Xx０-９ｘＸ]" + _EDGE_AFTER)
# 138 1234 5678, 138-1234-5678, +86 13812345678 and 8613812345678 as well.
MOBILE = re.compile(
    _EDGE_BEFORE
    + r"(?:(?:\+|＋)?86[- ]?)?"
    + f"1[3-9３-９]{_DIGIT}[- ]?{_DIGIT}{{4}}[- ]?{_DIGIT}{{4}}"
    + _EDGE_AFTER
)


def _clear_id(raw: str) -> str:
    return raw.translate(_FULL_WIDTH).upper()


def _clear_phone(raw: str) -> str:
    digits = re.sub(r"[^0-9]", "", raw.translate(_FULL_WIDTH))
    return digits[-11:]


def new_token(prefix: str) -> str:
    return prefix + secrets.token_hex(8)


async def tokenize(redis, text: str) -> str:
    """Returns `text` with every ID and mobile number replaced by a vault token.

    The same clear value within one message gets one token. Each token's clear value
    is stored with the TTL `keys.VAULT_TTL_S`; the rest of the text is unchanged.
    """
    issued: dict[str, str] = {}  # clear value -> token, for this message only

    def swap(pattern: re.Pattern[str], prefix: str, clean, source: str) -> str:
        def replace(match: re.Match[str]) -> str:
            value = clean(match.group(0))
            if value not in issued:
                issued[value] = new_token(prefix)
            return issued[value]

        return pattern.sub(replace, source)

    text = swap(ID_LIKE, ID_TOKEN_PREFIX, _clear_id, text)
    text = swap(MOBILE, PHONE_TOKEN_PREFIX, _clear_phone, text)
    if not issued:
        return text
    async with redis.pipeline(transaction=False) as pipe:
        for value, token in issued.items():
            pipe.set(keys.vault(token), value, ex=keys.VAULT_TTL_S)
        await pipe.execute()
    logger.info("vault.tokenized count=%d", len(issued))
    return text
