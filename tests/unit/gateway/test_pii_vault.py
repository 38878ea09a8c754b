"""The gateway's PII vault: ID and phone numbers never reach Rasa in clear."""
import re


from gateway import keys
from gateway.vault import tokenize

ID_A = "340504198001011234"
ID_X = "32040219751231002x"
PHONE = "13812345678"
TOKEN = re.compile(r"pii_(id|ph)_[0-9a-f]{16}")


async def test_id_and_phone_become_tokens_and_the_rest_is_unchanged(redis):
    text = f"我的身份证号是{ID_A}，手机{PHONE}，帮我查余额"
    out = await tokenize(redis, text)
    tokens = TOKEN.findall(out)
    assert [kind for kind in tokens] == ["id", "ph"]
    id_token, phone_token = (m.group(0) for m in TOKEN.finditer(out))
    assert out == f"我的身份证号是{id_token}，手机{phone_token}，帮我查余额"
    assert await redis.get(keys.vault(id_token)) == ID_A
    assert await redis.get(keys.vault(phone_token)) == PHONE


async def test_clear_values_expire_with_the_vault_ttl(redis):
    out = await tokenize(redis, f"{ID_A}")
    ttl = await redis.ttl(keys.vault(out))
    assert 0 < ttl <= keys.VAULT_TTL_S


async def test_same_value_twice_in_one_message_gets_one_token(redis):
    out = await tokenize(redis, f"{ID_A} 再说一遍 {ID_A}，电话{PHONE}或{PHONE}")
    ids = re.findall(r"pii_id_[0-9a-f]{16}", out)
    phones = re.findall(r"pii_ph_[0-9a-f]{16}", out)
    assert len(ids) == 2 and len(set(ids)) == 1
    assert len(phones) == 2 and len(set(phones)) == 1
    assert len(await redis.keys("anju:vault:*")) == 2


async def test_nothing_clear_remains_in_any_spelling(redis):
    text = (f"身份证{ID_X}；全角３４０５０４１９８００１０１１２３４；"
            "电话 138-1234-5678、+86 139 8765 4321、8615912345678")
    out = await tokenize(redis, text)
    assert not re.search(r"\d{6}", TOKEN.sub("", out)), out
    stored = {await redis.get(k) for k in await redis.keys("anju:vault:*")}
    assert stored == {ID_X.upper(), ID_A, PHONE, "13987654321", "15912345678"}


async def test_other_numbers_are_left_alone(redis):
    text = "验证码123456，贷款800000元，银行卡6222021234567890123，座机0555-1234567，17位34050419800101123"
    out = await tokenize(redis, text)
    assert out == text
    assert await redis.keys("anju:vault:*") == []


async def test_a_token_in_the_text_is_not_tokenized_again(redis):
    once = await tokenize(redis, f"号码{PHONE}")
    twice = await tokenize(redis, once)
    assert twice == once
