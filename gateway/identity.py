"""Channel identities (a WeChat openid, a verified phone caller) reach the actions only as a
short-lived assertion the gateway signs for one sender (bot/identity_assertion.py): metadata a
client sends is filtered out, and the actions ignore anything unsigned, expired or for another
sender. Channels put the result into `Conversation.turn(..., trusted_metadata=...)`."""
from __future__ import annotations

from bot import identity_assertion
from gateway.settings import Settings

METADATA_KEY = "identity_assertion"


def signed_identity(settings: Settings, sender_id: str, kind: str, value: str) -> dict[str, str]:
    key = settings.identity_assertion_key.get_secret_value().encode()
    return {METADATA_KEY: identity_assertion.sign(key, sender_id, kind, value, settings.identity_assertion_ttl_s)}
