"""Traditional characters, full-width input and common typos reach the tokenizer normalised."""
import pytest

from bot.components.chinese_text import normalize, to_half_width


def test_traditional_becomes_simplified():
    assert normalize("公積金貸款利率") == "公积金贷款利率"


def test_traditional_account_word_uses_the_domain_spelling():
    # OpenCC alone gives 帐户; our data and answers use 账户.
    assert normalize("公積金帳戶凍結") == "公积金账户冻结"


def test_full_width_digits_letters_and_space_become_half_width():
    assert to_half_width("ＡＰＰ　１２３２９") == "APP 12329"
    assert normalize("贷款５０万，２０年") == "贷款50万,20年"


def test_ascii_is_lower_cased():
    assert normalize("公积金APP") == "公积金app"


@pytest.mark.parametrize("typo, fixed", [("公基金提区", "公积金提取"), ("伤转公怎么办", "商转公怎么办")])
def test_common_typos_are_fixed(typo, fixed):
    assert normalize(typo) == fixed


@pytest.mark.parametrize("text", ["租屋提取公積金", "ｗｈａｔ　公积金", "離職後多久可以提取"])
def test_length_is_kept_so_entity_offsets_stay_valid(text):
    assert len(normalize(text)) == len(text)
