"""Place names are masked before the topic model: which city a citizen names never decides
the topic, whether it is a shipped city, another province's, or an anonymised A市/K9县."""
import pytest

from bot.components.chinese_text import normalize
from bot.components.places import PLACE_MASK, PlaceMasker, mask_places


@pytest.mark.parametrize("text, masked", [
    ("合肥市公积金怎么提取", "某市公积金怎么提取"),
    ("我在广东省深圳市南山区上班", "我在某市上班"),
    ("A市的公积金能转到B9市吗", "某市的公积金能转到某市吗"),
    ("K9县交的公积金", "某市交的公积金"),
    ("老家是湖南邵东县的", "老家是某市的"),
    ("在江阴买房能提取吗", "在某市买房能提取吗"),
    ("马鞍山和常州哪个贷款额度高", "某市和某市哪个贷款额度高"),
])
def test_places_of_any_kind_become_one_placeholder(text, masked):
    assert mask_places(normalize(text)) == masked


@pytest.mark.parametrize("text", [
    "其他城市的公积金能转过来吗", "住在市区能租房提取吗", "本市户口和外地户口有区别吗", "小区物业费能用公积金交吗",
    "欢迎来宾", "祝您身体安康", "公积金中心几点下班",
])
def test_words_that_only_look_like_places_stay(text):
    assert PLACE_MASK not in mask_places(normalize(text))


def test_extra_names_from_the_city_lookup_are_masked_too():
    assert PlaceMasker(extra=["安居镇"]).mask("安居镇公积金") == "某市公积金"
    assert mask_places("安居镇公积金") == "安居镇公积金"
