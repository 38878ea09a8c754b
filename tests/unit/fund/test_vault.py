import fakeredis
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from fund.errors import InvalidInput, TokenExpired, VaultUnavailable
from fund.vault import Vault, is_token, vault_key
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


def test_name_and_bank_card_tokens_resolve():
    store = fakeredis.FakeRedis()
    store.set(vault_key("pii_nm_00000000000000cc"), "韦娜伟")
    store.set(vault_key("pii_cd_00000000000000dd"), "6222020200112233445")
    vault = Vault(store)
    assert is_token("pii_nm_00000000000000cc") and is_token("pii_cd_00000000000000dd")
    assert vault.resolve("pii_nm_00000000000000cc", "nm") == "韦娜伟"
    assert vault.resolve("pii_cd_00000000000000dd") == "6222020200112233445"
    with pytest.raises(TokenExpired) as caught:
        vault.resolve("pii_nm_00000000000000ee")
    assert caught.value.kind == "nm"
    assert not is_token("pii_xx_00000000000000cc")


def test_a_token_of_another_kind_is_refused_where_one_kind_is_expected():
    store = fakeredis.FakeRedis()
    store.set(vault_key("pii_ph_00000000000000aa"), "13800001111")
    with pytest.raises(InvalidInput):
        Vault(store).resolve("pii_ph_00000000000000aa", "nm")
