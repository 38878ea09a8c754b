"""Questions about other insurance schemes never get a fund answer."""
import pytest

from bot.components.chinese_text import normalize
from bot.components.other_schemes import about_other_scheme_only


@pytest.mark.parametrize("text", [
    "养老保险断了两年怎么补缴",
    "灵活就业人员社保缴费基数今年多少",
    "医保转到新城市要带什么",
    "失业金能领几个月",
    "五险交满多少年能退休",
    "醫保卡丟了怎麼補辦",  # traditional, after the normaliser
])
def test_another_scheme_without_the_fund_is_out_of_scope(text):
    assert about_other_scheme_only(normalize(text))


@pytest.mark.parametrize("text", [
    "公积金补缴怎么办理",
    "社保和公积金哪个先交",          # names both: the model decides
    "五险一金里的一金交多少",
    "公基金和社保断交有影响吗",      # a common misspelling of 公积金
    "缴费基数是多少",               # names no scheme at all
    "我想查余额",
])
def test_fund_questions_and_unnamed_schemes_are_left_to_the_model(text):
    assert not about_other_scheme_only(normalize(text))
