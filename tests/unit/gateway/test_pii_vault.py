"""The gateway's PII vault: ID, phone and card numbers and names never reach Rasa in clear."""
import re

from gateway import keys
from gateway.vault import reveal_masked, tokenize

ID_A = "340504198001011234"
ID_X = "32040219751231002x"
PHONE = "13812345678"
CARD = "6222021234567890123"
TOKEN = re.compile(r"pii_(id|ph|cd|nm)_[0-9a-f]{16}")


async def test_id_and_phone_become_tokens_and_the_rest_is_unchanged(redis):
    text = f"我的身份证号是{ID_A}，手机{PHONE}，帮我查余额"
    out = await tokenize(redis, text)
    assert TOKEN.findall(out) == ["id", "ph"]
    id_token, phone_token = (m.group(0) for m in TOKEN.finditer(out))
    assert out == f"我的身份证号是{id_token}，手机{phone_token}，帮我查余额"
    assert await redis.get(keys.vault(id_token)) == ID_A
    assert await redis.get(keys.vault(phone_token)) == PHONE
    assert await redis.get(keys.vault_masked(id_token)) == "340***********1234"
    assert await redis.get(keys.vault_masked(phone_token)) == "138****5678"


async def test_cards_and_cued_names_become_tokens(redis):
    out = await tokenize(redis, f"我叫张伟明，卡号{CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:16]} {CARD[16:]}")
    assert TOKEN.findall(out) == ["nm", "cd"]
    name_token, card_token = (m.group(0) for m in TOKEN.finditer(out))
    assert out == f"我叫{name_token}，卡号{card_token}"
    assert await redis.get(keys.vault(name_token)) == "张伟明"
    assert await redis.get(keys.vault(card_token)) == CARD
    assert await redis.get(keys.vault_masked(name_token)) == "张*明"
    assert await redis.get(keys.vault_masked(card_token)) == "6222***********0123"


async def test_a_bare_name_is_tokenized_only_when_the_name_was_asked(redis):
    assert await tokenize(redis, "李明") == "李明"
    out = await tokenize(redis, "李明", expecting_name=True)
    assert TOKEN.fullmatch(out) and await redis.get(keys.vault(out)) == "李明"
    assert await tokenize(redis, "取消", expecting_name=True) == "取消"


async def test_clear_and_masked_values_expire_with_the_vault_ttl(redis):
    out = await tokenize(redis, f"{ID_A}")
    for key in (keys.vault(out), keys.vault_masked(out)):
        assert 0 < await redis.ttl(key) <= keys.VAULT_TTL_S


async def test_same_value_twice_in_one_message_gets_one_token(redis):
    out = await tokenize(redis, f"{ID_A} 再说一遍 {ID_A}，电话{PHONE}或{PHONE}")
    ids = re.findall(r"pii_id_[0-9a-f]{16}", out)
    phones = re.findall(r"pii_ph_[0-9a-f]{16}", out)
    assert len(ids) == 2 and len(set(ids)) == 1
    assert len(phones) == 2 and len(set(phones)) == 1
    assert len(await redis.keys("anju:vault:*")) == 2


async def test_nothing_clear_remains_in_any_spelling(redis):
    text = (f"身份证{ID_X}；全角３４０５０４１９８００１０１１２３４；"
            "电话 138-1234-5678、+86 139 8765 4321、8615912345678、幺五九一二三四五六七八")
    out = await tokenize(redis, text)
    assert not re.search(r"\d{6}", TOKEN.sub("", out)), out
    stored = {await redis.get(k) for k in await redis.keys("anju:vault:*")}
    assert stored == {ID_X.upper(), ID_A, PHONE, "13987654321", "15912345678"}


async def test_other_numbers_are_left_alone(redis):
    text = "验证码123456，贷款800000元，日期20260101，座机0555-1234567，工号2024001"
    out = await tokenize(redis, text)
    assert out == text
    assert await redis.keys("anju:vault:*") == []


async def test_a_token_in_the_text_is_not_tokenized_again(redis):
    once = await tokenize(redis, f"号码{PHONE}，身份证{ID_A}")
    twice = await tokenize(redis, once)
    assert twice == once


async def test_staff_see_masked_values_in_place_of_tokens(redis):
    out = await tokenize(redis, f"我叫张伟明，身份证{ID_A}，手机{PHONE}")
    assert await reveal_masked(redis, out) == "我叫张*明，身份证340***********1234，手机138****5678"


async def test_an_expired_token_is_shown_as_a_generic_mask(redis):
    out = await tokenize(redis, f"身份证{ID_A}，卡号{CARD}")
    await redis.delete(*await redis.keys("anju:vault_masked:*"))
    assert await reveal_masked(redis, out) == "身份证[证件号]，卡号[银行卡号]"
    assert await reveal_masked(redis, "pii_ph_0123456789abcdef pii_nm_0123456789abcdef") == "[手机号] [姓名]"
    assert await reveal_masked(redis, "没有令牌") == "没有令牌"
