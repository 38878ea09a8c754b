"""PII vault: ID, phone and card numbers and names leave the citizen's text before it reaches Rasa.

Rasa's tracker keeps every message for good, so the gateway swaps each piece of personal
data bot/pii.py finds for a random token (`pii_id_`, `pii_ph_`, `pii_cd_`, `pii_nm_` +
16 hex) and keeps, for `keys.VAULT_TTL_S`, the clear value under `keys.vault(token)` (a
plain string: the core resolves tokens itself) and the masked value under
`keys.vault_masked(token)`, which `reveal_masked` shows staff in the token's place. Nothing
here turns a token back into clear text. Any checksum is accepted: the core validates it
and tells the citizen what is wrong.
"""
from __future__ import annotations

import logging
import secrets

from bot import pii
from gateway import keys

logger = logging.getLogger(__name__)

ID_TOKEN_PREFIX = pii.TOKEN_PREFIXES[pii.ID]
PHONE_TOKEN_PREFIX = pii.TOKEN_PREFIXES[pii.PHONE]
CARD_TOKEN_PREFIX = pii.TOKEN_PREFIXES[pii.CARD]
NAME_TOKEN_PREFIX = pii.TOKEN_PREFIXES[pii.NAME]


def new_token(prefix: str) -> str:
    return prefix + secrets.token_hex(8)


async def tokenize(redis, text: str, expecting_name: bool = False) -> str:
    """Returns `text` with every ID, phone and card number and every name replaced by a token.

    `expecting_name`: the text answers the name question, so a bare name is a name too.
    The same value within one message gets one token; the rest of the text is unchanged.
    """
    issued: dict[tuple[str, str], str] = {}  # (kind, clear value) -> token, for this message only

    def swap(span: pii.PiiSpan) -> str:
        key = (span.kind, span.value)
        if key not in issued:
            issued[key] = new_token(pii.TOKEN_PREFIXES[span.kind])
        return issued[key]

    text = pii.replace_pii(text, swap, expecting_name=expecting_name)
    if not issued:
        return text
    async with redis.pipeline(transaction=False) as pipe:
        for (kind, value), token in issued.items():
            pipe.set(keys.vault(token), value, ex=keys.VAULT_TTL_S)
            pipe.set(keys.vault_masked(token), pii.mask_value(kind, value), ex=keys.VAULT_TTL_S)
        await pipe.execute()
    logger.info("vault.tokenized count=%d", len(issued))
    return text


async def reveal_masked(redis, text: str) -> str:
    """`text` with every token replaced by its masked value (340***********1234), or by a
    generic mask such as [证件号] once the vault forgot it: what staff screens show."""
    tokens = list(dict.fromkeys(m.group(0) for m in pii.TOKEN.finditer(text)))
    if not tokens:
        return text
    masked = dict(zip(tokens, await redis.mget([keys.vault_masked(t) for t in tokens])))

    def shown(token: str) -> str:
        value = masked.get(token)
        if value is None:
            return pii.GENERIC_MASKS[pii.token_kind(token)]
        return value.decode() if isinstance(value, bytes) else str(value)

    return pii.TOKEN.sub(lambda m: shown(m.group(0)), text)
