"""Chinese and Arabic numerals in entity values to numbers: amounts, years, ratios.

Citizens write "一万二", "50万", "三十万元", "二十年", "三成", "百分之十二". The actions
and the core want 12000, 500000, 20, 0.3. These are plain functions with no Rasa import,
so the app venv's unit tests can run them; bot/components/numeral_normalizer.py wraps
them as a Rasa component, which also drops coded entities (house_order, loan_type,
withdrawal_type) whose value did not map to a known code: DIET sometimes tags odd spans.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional, Union

import cn2an

logger = logging.getLogger(__name__)

Number = Union[int, float]

_CN_DIGITS = "零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟"
_UNITS = {"万": 10_000, "w": 10_000, "千": 1_000, "k": 1_000, "亿": 100_000_000}
_AMOUNT = re.compile(
    rf"^(?P<num>[\d.,]+|[{_CN_DIGITS}]+)\s*(?P<unit>亿|万|千|w|k)?"
    rf"(?P<tail>[{_CN_DIGITS}\d]*)\s*(?:元|块钱|块|人民币|rmb)?$",
    re.IGNORECASE,
)
_YEARS = re.compile(r"^(?P<num>\d+|[一二两三四五六七八九]?十[一二三四五六七八九]?|[一二两三四五六七八九])"
                    r"\s*(?:个)?\s*(?:年|周年)(?:期)?$")
_RATIO_PERCENT = re.compile(r"^(?P<num>\d+(?:\.\d+)?)\s*[%％]$")
_RATIO_CN_PERCENT = re.compile(rf"^百分之(?P<num>[\d.]+|[{_CN_DIGITS}点]+)$")
_RATIO_TENTHS = re.compile(rf"^(?P<num>[\d.]+|[{_CN_DIGITS}半]+)\s*成$")


def _to_number(text: str) -> Optional[Number]:
    """One number from Arabic or Chinese digits; None when it is not a number."""
    text = text.replace(",", "").strip()
    if not text:
        return None
    try:
        value = cn2an.cn2an(text, "smart")
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return int(value) if float(value).is_integer() else float(value)


def _tidy(value: float) -> Number:
    """Round away float noise (0.30000000000000004) and give ints where exact."""
    value = round(float(value), 6)
    return int(value) if value.is_integer() else value


def parse_amount(text: str) -> Optional[Number]:
    """Yuan as a number: "一万二" → 12000, "50万" → 500000, "三十万元" → 300000, "1.5w" → 15000."""
    match = _AMOUNT.match(text.strip().lower())
    if not match:
        return None
    num, unit, tail = match.group("num"), match.group("unit"), match.group("tail")
    if unit is None:
        # "一万二" has its unit inside the Chinese numeral; cn2an reads it whole.
        return _to_number(num + tail) if not tail or not num.replace(".", "").isdigit() else None
    head = _to_number(num)
    if head is None:
        return None
    scale = _UNITS[unit]
    value = head * scale
    if tail:
        # "十二万五" / "1万2": a bare trailing digit is the next unit down (5 → 5千).
        rest = _to_number(tail)
        if rest is None:
            return None
        value += rest * (scale // 10) if rest < 10 and len(tail) == 1 else rest
    return _tidy(value)


def parse_years(text: str) -> Optional[int]:
    """Whole years: "二十年" → 20, "30年" → 30; calendar years like "2025年" are refused."""
    match = _YEARS.match(text.strip())
    if not match:
        return None
    value = _to_number(match.group("num"))
    if value is None or not float(value).is_integer() or not 0 < value <= 100:
        return None
    return int(value)


def parse_ratio(text: str) -> Optional[Number]:
    """A share as a fraction: "三成" → 0.3, "12%" → 0.12, "百分之五" → 0.05."""
    text = text.strip()
    for pattern, divisor in ((_RATIO_PERCENT, 100), (_RATIO_CN_PERCENT, 100), (_RATIO_TENTHS, 10)):
        match = pattern.match(text)
        if match:
            raw = match.group("num")
            value = 0.5 if raw == "半" else _to_number(raw)
            if value is None:
                return None
            result = value / divisor
            return _tidy(result) if 0 <= result <= 1 else None
    return None


PARSERS = {"amount": parse_amount, "years": parse_years, "ratio": parse_ratio}

# The codes nlu_data/entities.yml maps synonyms to; the actions and the core rely on them.
CODES = {
    "house_order": {"first", "second"},
    "loan_type": {"fund", "commercial", "combination", "commercial_to_fund", "other_city"},
    "withdrawal_type": {"rent", "purchase", "retirement", "leave_job", "renovation", "property_fee",
                        "illness", "loan_repayment", "other"},
}


def normalize_entity_value(entity: str, value: str) -> Optional[Number]:
    """The number for an entity value of a numeric entity type, or None to leave it as text."""
    parser = PARSERS.get(entity)
    if parser is None or not isinstance(value, str):
        return None
    return parser(value)


def _longest_per_type(entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Drop an entity when a longer one of the same type covers it."""
    ranked = sorted(entities, key=lambda e: (e.get("start", 0) - e.get("end", 0), e.get("start", 0)))
    kept: List[Dict[str, Any]] = []
    for entity in ranked:
        if any(k["entity"] == entity["entity"] and k.get("start", 0) <= entity.get("start", 0)
               and entity.get("end", 0) <= k.get("end", 0) for k in kept):
            continue
        kept.append(entity)
    return sorted(kept, key=lambda e: e.get("start", 0))


_NEXT_NUMERAL_STARTS = "十百年个成"


def trim_amount_overreach(entity: Dict[str, Any], text: Optional[str]) -> Dict[str, Any]:
    """"贷款80万二十年": the extractor may tag "80万二" as the amount, but that 二 begins
    "二十年" (the years), so it is cut off the amount instead of read as 2千."""
    value, end = entity.get("value"), entity.get("end")
    if (entity.get("entity") != "amount" or not text or not isinstance(value, str) or len(value) < 2
            or not isinstance(end, int)):
        return entity
    if value[-1] in "一二两三四五六七八九" and text[end:end + 1] and text[end] in _NEXT_NUMERAL_STARTS:
        return {**entity, "value": value[:-1], "end": end - 1}
    return entity


def normalize_entities(entities: List[Dict[str, Any]], text: Optional[str] = None) -> List[Dict[str, Any]]:
    """Numbers for numeric entities, unparseable numeric or uncoded matches dropped, overlaps merged.
    With the message text, an amount that swallowed the first numeral of what follows is trimmed."""
    result = []
    for entity in _longest_per_type([trim_amount_overreach(e, text) for e in entities]):
        codes = CODES.get(entity.get("entity"))
        if codes is not None and entity.get("value") not in codes:
            logger.debug("nlu.entity.uncoded entity=%s value=%s", entity["entity"], entity.get("value"))
            continue
        if entity.get("entity") in PARSERS:
            number = normalize_entity_value(entity["entity"], entity.get("value"))
            if number is None:
                logger.debug("nlu.numeral.dropped entity=%s value=%s", entity["entity"], entity.get("value"))
                continue
            entity = {**entity, "value": number}
        result.append(entity)
    return result
