"""gateway.privacy keeps its names, now backed by bot/pii.py."""
from gateway.privacy import mask_id_number, mask_phone, mask_text


def test_masks_follow_the_published_format():
    assert mask_id_number("340503199001011234") == "340***********1234"
    assert mask_phone("13812345678") == "138****5678"


def test_free_text_is_masked_but_other_numbers_stay():
    text = "我的身份证34050319900101123X，手机13812345678，贷款30万，工号2024001"
    masked = mask_text(text)
    assert "34050319900101123X" not in masked and "13812345678" not in masked
    assert "340***********123X" in masked and "138****5678" in masked
    assert "30万" in masked and "2024001" in masked


def test_longer_digit_runs_are_not_mistaken_for_phones():
    assert mask_text("订单号 1381234567890") == "订单号 1381234567890"


def test_spaced_glued_and_chinese_digits_are_masked_too():
    masked = mask_text("身份证号340503199001011234abc 电话 一三八一二三四五六七八 卡号6222 0212 3456 1234")
    assert masked == "身份证号340***********1234abc 电话 138****5678 卡号6222********1234"


def test_names_after_a_cue_are_masked():
    assert mask_text("我叫张伟明，姓名：李明") == "我叫张*明，姓名：李*"
