"""bot/pii.py: every way an ID, mobile or card number or a name is typed is found and masked;
ordinary numbers and the vault's own tokens are not."""
import pytest

from bot.pii import (CARD, ID, NAME, PHONE, find_pii, is_likely_name, mask_card, mask_id_number, mask_name,
                     mask_phone, mask_text, token_kind)

ID_18 = "340104199001011234"


def found(text, expecting_name=False):
    return [(s.kind, s.value) for s in find_pii(text, expecting_name=expecting_name)]


@pytest.mark.parametrize("text, kind, value", [
    (ID_18, ID, ID_18),
    ("34010419900101123x", ID, "34010419900101123X"),
    ("3401 0419 9001 0112 34", ID, ID_18),
    ("340104-19900101-1234", ID, ID_18),
    ("３４０１０４１９９００１０１１２３４", ID, ID_18),
    ("三四〇一〇四一九九〇〇一〇一一二三四", ID, ID_18),
    (f"身份证号{ID_18}abc", ID, ID_18),
    (f"ID{ID_18}", ID, ID_18),
    ("旧身份证340104900101123", ID, "340104900101123"),
    ("13812345678", PHONE, "13812345678"),
    ("138-1234-5678", PHONE, "13812345678"),
    ("138 1234 5678", PHONE, "13812345678"),
    ("１３８１２３４５６７８", PHONE, "13812345678"),
    ("一三八一二三四五六七八", PHONE, "13812345678"),
    ("幺三八幺二三四五六七八", PHONE, "13812345678"),
    ("一三八〇〇〇〇五六七八", PHONE, "13800005678"),
    ("一三八零零零零五六七八", PHONE, "13800005678"),
    ("手机13812345678号", PHONE, "13812345678"),
    ("tel13812345678", PHONE, "13812345678"),
    ("+86 139 8765 4321", PHONE, "13987654321"),
    ("8615912345678", PHONE, "15912345678"),
    ("6222021234567890", CARD, "6222021234567890"),
    ("6222 0212 3456 7890 123", CARD, "6222021234567890123"),
    ("卡号6222-0212-3456-7890", CARD, "6222021234567890"),
    ("６２２２０２１２３４５６７８９０", CARD, "6222021234567890"),
])
def test_numbers_are_found_in_every_spelling(text, kind, value):
    assert found(text) == [(kind, value)]


@pytest.mark.parametrize("text", [
    "验证码123456", "贷款500000元", "20260101", "2026-01-01", "订单号 1381234567890", "座机0555-1234567",
    "工号2024001", "贷款30万，20年", "我有一个问题", "五十万", "12329",
])
def test_ordinary_numbers_are_not_personal_data(text):
    assert found(text) == []


@pytest.mark.parametrize("token", ["pii_id_0123456789abcdef", "pii_ph_a13812345678bcde",
                                   "pii_cd_6222021234567890", "pii_nm_0a1b2c3d4e5f6071"])
def test_a_token_is_never_matched_again(token):
    assert found(f"号码{token}，再说一遍{token}") == []
    assert mask_text(token) == token


def test_a_phone_followed_by_a_code_stays_two_numbers():
    assert found("13812345678 123456") == [(PHONE, "13812345678")]


def test_several_values_in_one_text_keep_their_order_and_positions():
    text = f"姓名：李明，身份证{ID_18}，手机138-1234-5678"
    spans = find_pii(text)
    assert [(s.kind, text[s.start:s.end]) for s in spans] == [
        (NAME, "李明"), (ID, ID_18), (PHONE, "138-1234-5678")]


@pytest.mark.parametrize("text, name", [
    ("我叫张伟", "张伟"), ("我的名字是王小明", "王小明"), ("姓名：李明，电话…", "李明"), ("名字叫欧阳娜娜", "欧阳娜娜"),
    ("我叫张伟明天来办", "张伟"), ("我的名字是阿依古丽·买买提", "阿依古丽·买买提"), ("姓名张三13812345678", "张三"),
])
def test_names_after_a_cue_are_found(text, name):
    assert (NAME, name) in found(text)


@pytest.mark.parametrize("text", ["请输入身份证上的姓名。", "身份证号码与姓名不匹配", "姓名和身份证", "名字叫什么",
                                  "我叫不出来", "改名字了", "张伟"])
def test_no_name_without_a_cue_or_after_one_that_is_no_name(text):
    assert [k for k, _ in found(text)] == []


@pytest.mark.parametrize("answer, name", [("张伟", "张伟"), (" 李明。", "李明"), ("我叫王五", "王五"),
                                          ("欧阳娜娜", "欧阳娜娜"), ("谢娜", "谢娜"), ("买买提·艾力", "买买提·艾力")])
def test_a_bare_name_counts_when_the_text_answers_the_name_question(answer, name):
    assert found(answer, expecting_name=True) == [(NAME, name)]


@pytest.mark.parametrize("answer", ["取消", "谢谢", "转人工", "人工", "查余额", "好的", "不知道", "金额", "你好", "算了"])
def test_words_said_instead_of_a_name_stay_words(answer):
    assert found(answer, expecting_name=True) == []
    assert not is_likely_name(answer)


@pytest.mark.parametrize("answer", ["水悦华", "禤国明", "买合木"])
def test_a_rare_surname_still_counts_when_the_text_answers_the_name_question(answer):
    assert found(answer, expecting_name=True) == [(NAME, answer)]
    assert found(f"今天{answer}来过") == []  # running text without a cue is left alone


@pytest.mark.parametrize("answer", ["客服", "视频办理", "不用了", "明白了", "清楚", "工作人员", "要视频"])
def test_more_replies_to_the_name_question_stay_words(answer):
    assert found(answer, expecting_name=True) == []


def test_masks_follow_the_published_formats():
    assert mask_id_number(ID_18) == "340***********1234"
    assert mask_id_number("340104900101123") == "340********1123"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_card("6222021234561234") == "6222********1234"
    assert mask_name("张伟明") == "张*明" and mask_name("李明") == "李*" and mask_name("欧阳娜娜") == "欧**娜"


def test_mask_text_masks_every_kind_and_leaves_the_rest():
    text = "我叫张伟明，身份证3401 0419 9001 0112 34，手机138-1234-5678，卡6222021234561234，贷款500000元"
    assert mask_text(text) == ("我叫张*明，身份证340***********1234，手机138****5678，卡6222********1234，"
                               "贷款500000元")


def test_token_kinds():
    assert token_kind("pii_id_0123456789abcdef") == ID and token_kind("pii_nm_0123456789abcdef") == NAME
    assert token_kind("pii_xx_0123456789abcdef") is None and token_kind("pii_id_0123") is None
