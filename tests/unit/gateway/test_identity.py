"""What the gateway signs is what the actions accept, for that sender only and only until it expires."""
import time

from bot import identity_assertion
from gateway.identity import METADATA_KEY, signed_identity
from gateway.settings import Settings


def test_a_signed_identity_verifies_for_its_sender_only():
    settings = Settings(_env_file=None, anju_env="test", identity_assertion_key="k" * 32, identity_assertion_ttl_s=60)
    token = signed_identity(settings, "web-1", "wechat_openid", "o-1")[METADATA_KEY]
    key = b"k" * 32
    assertion = identity_assertion.verify(key, token, "web-1")
    assert assertion is not None and (assertion.kind, assertion.value) == ("wechat_openid", "o-1")
    assert identity_assertion.verify(key, token, "web-2") is None
    assert identity_assertion.verify(b"other-key" * 4, token, "web-1") is None
    assert identity_assertion.verify(key, token, "web-1", now=time.time() + 120) is None
