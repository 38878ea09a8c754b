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
