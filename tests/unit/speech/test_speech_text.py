"""Text on its way in (recognised -> bot) and out (bot -> spoken)."""
import pytest

from speech.numbers import normalise_numbers
from speech.spoken_text import speakable
from speech.vocabulary import DomainCorrector


@pytest.mark.parametrize("heard,meant", [
    ("我的攻击金余额是多少", "我的公积金余额是多少"),
    ("工基金怎么提取", "公积金怎么提取"),
    ("住房工基金", "住房公积金"),
    ("查一下鱼鵝", "查一下余额"),
    ("体取公积金", "提取公积金"),
    ("我想专人工", "我想转人工"),
    ("风寸了怎么办", "封存了怎么办"),
])
def test_homophones_of_domain_terms_become_the_terms(heard, meant):
    assert DomainCorrector().correct(heard) == meant


@pytest.mark.parametrize("text", [
    "今天天气很好", "我想问一下", "装修可以提取吗", "我要提取公积金", "公积金中心在哪里", "hello 公积金 123",
])
def test_other_text_is_left_alone(text):
    assert DomainCorrector().correct(text) == text


@pytest.mark.parametrize("heard,meant", [
    ("我要转员工", "我要转人工"), ("麻烦帮我拽人工服务", "麻烦帮我转人工服务"), ("找人工", "转人工"),
])
def test_a_near_miss_of_the_handoff_command_in_a_short_utterance_is_the_command(heard, meant):
    assert DomainCorrector().correct(heard) == meant


@pytest.mark.parametrize("text", [
    "我是公司员工想问提取", "单位员工怎么缴存", "在员工",
    "我是在单位上班的员工，公积金每个月转员工账户吗",   # long: a sentence, not a command
])
def test_employees_and_long_sentences_are_not_taken_for_the_command(text):
    assert DomainCorrector().correct(text) == text


def test_terms_must_be_chinese():
    with pytest.raises(ValueError, match="Chinese characters only"):
        DomainCorrector(["公积金", "ID card"])


@pytest.mark.parametrize("heard,normal", [
    ("提取一万二千元", "提取12000元"),
    ("一万二", "12000"),
    ("身份证号一一零一零五", "身份证号110105"),
    ("三个月", "3个月"),
    ("利率百分之三点二五", "利率3.25%"),
    ("twelve thousand", "12000"),
    ("12,000元", "12000元"),
    ("我想查一下余额", "我想查一下余额"),
    ("一些材料", "一些材料"),
    ("万一不行", "万一不行"),
    ("第一次", "第一次"),
])
def test_numbers_become_digits_but_words_stay_words(heard, normal):
    assert normalise_numbers(heard) == normal


@pytest.mark.parametrize("written,spoken", [
    ("您的余额是1,234.5元", "您的余额是一千二百三十四点五元"),
    ("可提取12000元", "可提取一万二千元"),
    ("2026年9月20日到账", "二零二六年九月二十日到账"),
    ("2026-09-20", "二零二六年九月二十日"),
    ("请拨打12329", "请拨打幺二三二九"),
    ("身份证号11010519491231002X", "身份证号幺幺零幺零五幺九四九幺二三幺零零二叉"),
    ("验证码是083145", "验证码是零八三幺四五"),
    ("利率3.25%", "利率百分之三点二五"),
    ("您有2笔贷款", "您有两笔贷款"),
    ("10个工作日", "十个工作日"),
    ("9:05开门", "九点零五分开门"),
    ("¥500", "五百元"),
])
def test_numbers_dates_and_ids_are_spoken_as_chinese(written, spoken):
    assert speakable(written) == spoken
