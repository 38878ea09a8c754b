import fakeredis
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from fund.errors import TokenExpired, VaultUnavailable
from fund.vault import Vault, vault_key
from gateway import keys


def test_key_format_matches_the_gateway():
    assert vault_key("pii_id_0123456789abcdef") == keys.vault("pii_id_0123456789abcdef")


def test_clear_values_pass_and_tokens_resolve():
    store = fakeredis.FakeRedis()
    store.set(vault_key("pii_ph_00000000000000aa"), "13800001111")
    vault = Vault(store)
    assert vault.resolve("320402199403120454") == "320402199403120454"
    assert vault.resolve(" pii_ph_00000000000000aa ") == "13800001111"
    with pytest.raises(TokenExpired):
        vault.resolve("pii_id_00000000000000bb")


def test_unreachable_redis_is_reported():
    class Down:
        def get(self, name):
            raise RedisConnectionError("down")
    with pytest.raises(VaultUnavailable):
        Vault(Down()).resolve("pii_id_00000000000000bb")
