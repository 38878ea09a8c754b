"""Text rewritten the way a Mandarin speaker reads it aloud, before any TTS engine sees it.

espeak-ng reads digits badly (and Latin as pinyin), so numbers become Chinese words:
amounts and counts as quantities (1,234.5元 -> 一千二百三十四点五元), years and ID, phone
and hotline numbers digit by digit with 1 as 幺 (12329 -> 幺二三二九), dates as 年月日.
"""
import re

import cn2an

_DIGITS = str.maketrans("0123456789Xx", "零幺二三四五六七八九叉叉")
_PLAIN_DIGITS = str.maketrans("0123456789", "零一二三四五六七八九")

_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_DATE = re.compile(r"(?<!\d)(\d{4})年(?:(\d{1,2})月)?(?:(\d{1,2})[日号])?")
_MONTH_DAY = re.compile(r"(?<!\d)(\d{1,2})月(\d{1,2})([日号])")
_TIME = re.compile(r"(?<!\d)(\d{1,2}):(\d{2})(?!\d)")
_ID = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")
_GROUPED = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_YUAN_SIGN = re.compile(r"[¥￥](\d+(?:\.\d+)?)")
_CODE = re.compile(r"(?<![\d.])\d{5,}(?![\d.]|\s*[元块万亿])")  # phone, hotline, account, code; not amounts
_TWO = re.compile(r"(?<![\d.])2(?=[笔个次位项种份张套天年岁])")  # 两笔, not 二笔
_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?![\d.])")


def _quantity(number: str) -> str:
    spoken = cn2an.an2cn(number, "low")
    # cn2an says 一十 for 10-19 only inside larger numbers; 十二 on its own, as people say it.
    return spoken[1:] if spoken.startswith("一十") else spoken


def _digits(number: str) -> str:
    return number.translate(_DIGITS)


def _date(year: str | None, month: str | None, day: str | None, day_word: str = "日") -> str:
    out = f"{year.translate(_PLAIN_DIGITS)}年" if year else ""
    if month:
        out += f"{_quantity(str(int(month)))}月"
    if day:
        out += f"{_quantity(str(int(day)))}{day_word}"
    return out


def speakable(text: str) -> str:
    text = _ISO_DATE.sub(lambda m: _date(*m.groups()), text)
    text = _DATE.sub(lambda m: _date(m.group(1), m.group(2), m.group(3), m.group(0)[-1] if m.group(3) else "日"), text)
    text = _MONTH_DAY.sub(lambda m: _date(None, m.group(1), m.group(2), m.group(3)), text)
    text = _TIME.sub(lambda m: f"{_quantity(str(int(m.group(1))))}点" + ("整" if m.group(2) == "00" else f"{_minutes(m.group(2))}分"), text)
    text = _ID.sub(lambda m: _digits(m.group(0)), text)
    text = _YUAN_SIGN.sub(lambda m: f"{m.group(1)}元", text)
    text = _GROUPED.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _PERCENT.sub(lambda m: f"百分之{_quantity(m.group(1))}", text)
    text = _CODE.sub(lambda m: _digits(m.group(0)), text)
    text = _TWO.sub("两", text)
    return _NUMBER.sub(lambda m: _quantity(m.group(0)), text)


def _minutes(mm: str) -> str:
    return "零" + _quantity(mm[1]) if mm.startswith("0") else _quantity(mm)
