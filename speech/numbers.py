"""Numbers in recognised text, normalised to digits for the bot (一万二 -> 12000, 一一零 -> 110).

Deliberately conservative: 一下, 一些, 一点, 第一, 万一 stay words; a lone numeral becomes a digit
only before a unit (元, 年, 月, 个月 ...). Whisper sometimes writes amounts as English words or
with thousands separators; both are turned into plain digits.
"""
import re

import cn2an

_DIGIT = {"零": "0", "〇": "0", "洞": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4",
          "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_UNITS = "十百千万亿"
_SPAN = re.compile(f"[零〇幺一二两三四五六七八九{_UNITS}点]+")
# A single numeral (or a bare unit word) becomes a number only before one of these.
_MEASURE = ("元", "块", "万", "年", "个月", "月", "日", "号", "岁", "期", "%", "套", "倍", "天", "毛", "角")
_KEEP = {"万一", "一一", "千万", "万万", "十分", "百分", "一点点", "点"}

_EN = {"zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
       "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
       "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
       "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_EN_SCALE = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_EN_WORD = "|".join(sorted([*_EN, *_EN_SCALE], key=len, reverse=True))
_EN_SPAN = re.compile(rf"\b(?:{_EN_WORD})(?:[\s-]+(?:and[\s-]+)?(?:{_EN_WORD}))*\b", re.IGNORECASE)
_PERCENT = re.compile(r"百分之(\d+(?:\.\d+)?)")
_GROUPED = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d])")


def _english_number(words: str) -> str:
    total = current = 0
    for word in re.split(r"[\s-]+", words.lower()):
        if word == "and":
            continue
        if word in _EN:
            current += _EN[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _EN_SCALE[word]
            current = 0
    return str(total + current)


def _chinese_number(span: str, following: str) -> str | None:
    core = span.strip("点")
    if not core or core in _KEEP or span in _KEEP:
        return None
    if len(core) == 1 and not following.startswith(_MEASURE):
        return None
    if not any(u in core for u in _UNITS):  # 一一零 or 三点五: read digit by digit
        return "".join("." if c == "点" else _DIGIT[c] for c in core)
    try:
        value = cn2an.cn2an(core, "smart")
    except (ValueError, KeyError, IndexError):
        return None
    return str(int(value)) if float(value).is_integer() else str(value)


def normalise_numbers(text: str) -> str:
    text = _GROUPED.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _EN_SPAN.sub(lambda m: _english_number(m.group(0)), text)
    out, pos = [], 0
    for m in _SPAN.finditer(text):
        out.append(text[pos:m.start()])
        span = m.group(0)
        number = _chinese_number(span, text[m.end():])
        if number is None:
            out.append(span)
        else:
            lead = span[:len(span) - len(span.lstrip("点"))]
            trail = span[len(span.rstrip("点")):]
            out.append(lead + number + trail)
        pos = m.end()
    out.append(text[pos:])
    return _PERCENT.sub(r"\1%", "".join(out))
