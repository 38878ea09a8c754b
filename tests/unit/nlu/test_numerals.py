"""Chinese numerals in amounts, loan terms and ratios become the numbers the actions use."""
import pytest

from bot.components.numerals import normalize_entities, parse_amount, parse_ratio, parse_years


@pytest.mark.parametrize("text, expected", [
    ("一万二", 12000),
    ("50万", 500000),
    ("三十万元", 300000),
    ("1.5w", 15000),
    ("十二万五", 125000),
    ("1万2", 12000),
    ("一百二十万", 1200000),
    ("两千块", 2000),
    ("3000元", 3000),
    ("12,000元", 12000),
])
def test_amounts_become_yuan(text, expected):
    assert parse_amount(text) == expected


@pytest.mark.parametrize("text", ["万", "abc", "多少钱"])
def test_non_amounts_are_refused(text):
    assert parse_amount(text) is None


@pytest.mark.parametrize("text, expected", [("二十年", 20), ("20年", 20), ("三十年", 30), ("十五年", 15), ("5年期", 5)])
def test_years_become_ints(text, expected):
    assert parse_years(text) == expected


def test_a_calendar_year_is_not_a_loan_term():
    assert parse_years("2025年") is None


@pytest.mark.parametrize("text, expected", [
    ("三成", 0.3), ("两成", 0.2), ("12%", 0.12), ("百分之十二", 0.12), ("百分之五", 0.05), ("7.5%", 0.075),
])
def test_ratios_become_fractions(text, expected):
    assert parse_ratio(text) == pytest.approx(expected)


def test_entities_get_numbers_and_bad_matches_are_dropped():
    entities = [
        {"entity": "amount", "start": 3, "end": 6, "value": "一万二"},
        {"entity": "years", "start": 0, "end": 5, "value": "2025年"},
        {"entity": "city", "start": 7, "end": 9, "value": "常州"},
    ]
    result = normalize_entities(entities)
    assert [(e["entity"], e["value"]) for e in result] == [("amount", 12000), ("city", "常州")]


def test_overlapping_matches_of_one_type_keep_the_longest():
    entities = [
        {"entity": "amount", "start": 0, "end": 3, "value": "50万"},
        {"entity": "amount", "start": 0, "end": 4, "value": "50万元"},
        {"entity": "years", "start": 4, "end": 7, "value": "二十年"},
    ]
    result = normalize_entities(entities)
    assert [(e["entity"], e["value"]) for e in result] == [("amount", 500000), ("years", 20)]


def test_coded_entities_without_a_known_code_are_dropped():
    entities = [
        {"entity": "house_order", "start": 0, "end": 3, "value": "一万二"},
        {"entity": "house_order", "start": 5, "end": 7, "value": "second"},
        {"entity": "withdrawal_type", "start": 8, "end": 10, "value": "rent"},
    ]
    assert [e["value"] for e in normalize_entities(entities)] == ["second", "rent"]


def test_an_amount_that_swallowed_the_start_of_the_years_is_trimmed():
    from bot.components.numerals import normalize_entities

    text = "贷款80万二十年"
    entities = [{"entity": "amount", "value": "80万二", "start": 2, "end": 6},
                {"entity": "years", "value": "二十年", "start": 5, "end": 8}]
    values = {e["entity"]: e["value"] for e in normalize_entities(entities, text)}
    assert values == {"amount": 800000, "years": 20}


def test_a_colloquial_thousands_digit_after_wan_is_kept():
    from bot.components.numerals import normalize_entities

    entities = [{"entity": "amount", "value": "一万二", "start": 2, "end": 5}]
    assert normalize_entities(entities, "取了一万二")[0]["value"] == 12000
