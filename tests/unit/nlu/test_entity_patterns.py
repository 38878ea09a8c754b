"""The amount/years/ratio regexes in nlu_data/entities.yml, as RegexEntityExtractor runs them,
followed by the numeral normaliser: what the actions receive for typical citizen phrasings."""
import re
from pathlib import Path

import pytest
import yaml

from bot.components.chinese_text import normalize
from bot.components.numerals import normalize_entities

ROOT = Path(__file__).resolve().parents[3]


def patterns():
    data = yaml.safe_load((ROOT / "nlu_data" / "entities.yml").read_text(encoding="utf-8"))
    return [(block["regex"], line.strip()[2:]) for block in data["nlu"] if "regex" in block
            for line in block["examples"].splitlines() if line.strip()]


def extract(text):
    text = normalize(text)
    found = [{"entity": name, "start": m.start(), "end": m.end(), "value": m.group()}
             for name, pattern in patterns() for m in re.finditer(pattern, text, flags=re.IGNORECASE)]
    return [(e["entity"], e["value"]) for e in normalize_entities(found)]


@pytest.mark.parametrize("text, expected", [
    ("我想贷三十万二十年月供多少", [("amount", 300000), ("years", 20)]),
    ("贷款50万，20年", [("amount", 500000), ("years", 20)]),
    ("貸款５０萬２０年", [("amount", 500000), ("years", 20)]),
    ("房租一万二，一年", [("amount", 12000), ("years", 1)]),
    ("房租一万二一年", [("amount", 12000)]),  # "二一年" is not a term; better none than 21
    ("首付三成", [("ratio", 0.3)]),
    ("缴存比例12%", [("ratio", 0.12)]),
    ("借一百二十万三十年", [("amount", 1200000), ("years", 30)]),
    ("2025年的利率", []),
])
def test_citizen_numbers_reach_the_actions_as_numbers(text, expected):
    assert extract(text) == expected
