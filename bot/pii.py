"""Personal data in free text: finding it, masking it, and the vault's token shapes.

The one PII module of the project (standard library only): the gateway's masking and
vault, and the actions' verification form, all use it, so what counts as an ID number,
a mobile or bank card number, or a name is decided here once.

Numbers are found however they are typed: ASCII or full-width digits, Chinese numeral
digits read one by one (一三八…, 幺, 〇/零), with single spaces or hyphens between digits
(`3401 0419 9001 0112 34`, `138-1234-5678`), and glued to letters or Chinese
(`身份证号340104199001011234abc`). A vault token's own hex (`pii_id_0123…`) is never
matched again. What a digit run is depends on its length:

* 18 characters (17 digits + digit or X): resident ID; 15 digits with a plausible
  YYMMDD birth date: first-generation ID;
* 11 digits starting 13–19 (optionally after +86/86): mainland mobile;
* 16–19 digits otherwise: bank card.

A 6-digit code, an amount like 500000 or a date like 20260101 is none of these. Names
are found after a cue (我叫, 我的名字是, 姓名, 名字) or, when the caller says the text
answers the name question, as the whole text; either way the name must start with a
common surname (or be a minority name with ·), which keeps words like 取消 or 谢谢 apart.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

ID = "id"
PHONE = "phone"
CARD = "card"
NAME = "name"
KINDS = (ID, PHONE, CARD, NAME)

# Vault tokens: `<prefix><16 hex>`; the core resolves them (fund/vault.py).
TOKEN_PREFIXES = {ID: "pii_id_", PHONE: "pii_ph_", CARD: "pii_cd_", NAME: "pii_nm_"}
TOKEN = re.compile(r"pii_(?:id|ph|cd|nm)_[0-9a-f]{16}")
ID_TOKEN = re.compile(r"pii_id_[0-9a-f]{16}")
NAME_TOKEN = re.compile(r"pii_nm_[0-9a-f]{16}")
# What is shown in place of a token whose masked value has expired.
GENERIC_MASKS = {ID: "[证件号]", PHONE: "[手机号]", CARD: "[银行卡号]", NAME: "[姓名]"}

_DIGITS = "0123456789０１２３４５６７８９〇零一二三四五六七八九幺"
_DIGIT_VALUES = "01234567890123456789001234567891"
_TO_ASCII = str.maketrans(_DIGITS + "xＸｘ", _DIGIT_VALUES + "XXX")
_D = "[0-9０-９〇零一二三四五六七八九幺]"
_X = "[XxＸｘ]"
_SEP = "[ \u3000\\-－‐]"
_GROUP = re.compile(f"{_D}+{_X}?")
_PLUS = "+＋"
MOBILE = re.compile(r"1[3-9][0-9]{9}")

_HAN = "\u4e00-\u9fff"
_DOT = "·•"
# A typed name as the verification form accepts it (the core then checks it against the ID).
NAME_ANSWER = re.compile(f"^[{_HAN}{_DOT}]{{2,20}}$")
# Longest first: the cue is cut off a name answer, and a name is looked for right after it.
NAME_CUES = ("我的名字叫", "我的名字是", "我的姓名是", "我的姓名", "我的名字", "姓名是", "姓名为", "名字是",
             "名字叫", "名字为", "我叫", "姓名", "名字")
_ANSWER_PUNCTUATION = " \u3000\t\r\n，,。.！!：:"
_CUE = re.compile("(?:" + "|".join(NAME_CUES) + r")[:：]?[ \u3000]?")
# Characters that end a name found in running text: particles, verbs and words of this domain.
_STOP = set("的了吗呢吧啊呀么嘛不没要想查办取消转谢你我他她它请帮问哪什怎额贷款号码证机验退停算嗯哦喂是在有就都"
            "也还把被给从到说看找叫身份电话手与及或")
# Words that end a name in running text although each character may be part of a name.
_STOP_WORDS = ("今天", "明天", "昨天", "后天", "现在", "刚才", "一下", "身份", "人工", "客服", "视频", "余额", "提取",
               "公积", "工作人员", "明白", "清楚", "知道")
_COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "司徒", "夏侯",
                      "长孙", "宇文", "轩辕", "端木", "独孤", "南宫", "西门", "百里", "呼延", "万俟", "赫连", "澹台",
                      "申屠", "钟离", "闾丘", "太史", "第五")
_SURNAMES = set(
    "王李张刘陈杨黄赵周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康"
    "施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷"
    "盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏"
    "席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁"
    "胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋"
    "相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾"
    "茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由洪"
)


@dataclass(frozen=True)
class PiiSpan:
    """One piece of personal data: text[start:end] as typed, and its clear value
    normalised (ASCII digits, X upper case, no spaces or hyphens)."""

    kind: str
    start: int
    end: int
    value: str


# -- masking -----------------------------------------------------------------------

def mask_id_number(value: str) -> str:
    """340***********1234: first 3 and last 4 characters kept."""
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str) -> str:
    """138****5678."""
    return value[:3] + "****" + value[-4:]


def mask_card(value: str) -> str:
    """6222********1234: first 4 and last 4 digits kept."""
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_name(value: str) -> str:
    """张*明, 李*, 欧**娜: the first and (from three characters on) the last character kept."""
    if len(value) <= 2:
        return value[:1] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]


MASKERS = {ID: mask_id_number, PHONE: mask_phone, CARD: mask_card, NAME: mask_name}


def mask_value(kind: str, value: str) -> str:
    return MASKERS[kind](value)


def mask_text(text: str) -> str:
    """`text` with every ID, mobile and card number and every cued name masked (logs, screens)."""
    return replace_pii(text, lambda span: mask_value(span.kind, span.value))


def replace_pii(text: str, replacement, expecting_name: bool = False) -> str:
    """Replaces every span `find_pii` finds with `replacement(span)`."""
    out, last = [], 0
    for span in find_pii(text, expecting_name=expecting_name):
        out += [text[last:span.start], replacement(span)]
        last = span.end
    out.append(text[last:])
    return "".join(out)


# -- finding -----------------------------------------------------------------------

def to_ascii_digits(text: str) -> str:
    """Full-width and Chinese numeral digits as ASCII digits, x as X (lengths are kept)."""
    return text.translate(_TO_ASCII)


def find_pii(text: str, expecting_name: bool = False) -> List[PiiSpan]:
    """Every ID, mobile and card number and every name in `text`, in order, not overlapping.

    `expecting_name`: the text answers "what is your name?", so a bare name counts too.
    """
    numbers = [span for start, end in _outside_tokens(text) for span in _numbers(text, start, end)]
    names = _names(text, numbers, expecting_name)
    return sorted(numbers + names, key=lambda s: s.start)


def is_token(value: str) -> bool:
    return bool(TOKEN.fullmatch(value.strip()))


def token_kind(token: str) -> Optional[str]:
    """The kind of personal data a vault token stands for, or None for anything else."""
    if not TOKEN.fullmatch(token):
        return None
    return next(kind for kind, prefix in TOKEN_PREFIXES.items() if token.startswith(prefix))


def strip_name_cue(text: str) -> str:
    """The answer to the name question without a leading cue (我叫, 姓名是…)."""
    for cue in NAME_CUES + ("我是",):
        if text.startswith(cue) and len(text) > len(cue):
            return text[len(cue):].lstrip(":：")
    return text


def is_likely_name(value: str) -> bool:
    """A Chinese name: 2-4 characters from a common surname on, none of them a particle or a
    word of this domain; or a minority name of parts joined by ·."""
    if re.fullmatch(f"[{_HAN}]{{1,10}}(?:[{_DOT}][{_HAN}]{{1,10}}){{1,3}}", value):
        return len(value) <= 20
    if not re.fullmatch(f"[{_HAN}]{{2,4}}", value):
        return False
    given_names = []
    if value[:2] in _COMPOUND_SURNAMES and len(value) > 2:
        given_names.append(value[2:])
    if value[0] in _SURNAMES:
        given_names.append(value[1:])
    return any(not any(c in _STOP for c in given) for given in given_names)


def _plausible_answer_name(value: str) -> bool:
    """A reply to "what is your name?" with a surname outside the common list (水, 买, 禤 ...):
    2-4 Chinese characters, none of them a particle or a word of the dialogue (取消, 好的, 不用了)."""
    return (bool(re.fullmatch(f"[{_HAN}]{{2,4}}", value))
            and (value[0] in _SURNAMES or value[0] not in _STOP)
            and not any(c in _STOP for c in value[1:])
            and not any(word in value for word in _STOP_WORDS))


def _outside_tokens(text: str) -> Iterator[Tuple[int, int]]:
    """The parts of text between vault tokens."""
    last = 0
    for m in TOKEN.finditer(text):
        yield last, m.start()
        last = m.end()
    yield last, len(text)


def _classify(raw: str) -> Optional[Tuple[str, str]]:
    """(kind, clear value) of one digit string, or None when it is no personal data."""
    s = to_ascii_digits(re.sub(_SEP, "", raw))
    if len(s) == 18 and s[:17].isdigit() and (s[17].isdigit() or s[17] == "X"):
        return ID, s
    if not s.isdigit():
        return None
    if MOBILE.fullmatch(s):
        return PHONE, s
    if len(s) == 13 and s.startswith("86") and MOBILE.fullmatch(s[2:]):
        return PHONE, s[2:]
    if len(s) == 15 and s[0] in "12345678" and "01" <= s[8:10] <= "12" and "01" <= s[10:12] <= "31":
        return ID, s
    if 16 <= len(s) <= 19:
        return CARD, s
    return None


def _numbers(text: str, start: int, end: int) -> List[PiiSpan]:
    """Numbers in text[start:end]. Groups of digits each count on their own first; groups
    joined by one space or hyphen are then tried together, longest first."""
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(text, start, end)]
    found: List[PiiSpan] = []
    alone: List[Optional[PiiSpan]] = [_span(text, a, b) for a, b in groups]
    blocks: List[List[Tuple[int, int]]] = []
    for (a, b), span in zip(groups, alone):
        if span is not None:
            found.append(span)
            blocks.append([])
        elif blocks and blocks[-1] and a - blocks[-1][-1][1] == 1 and re.fullmatch(_SEP, text[a - 1]):
            blocks[-1].append((a, b))
        else:
            blocks.append([(a, b)])
    for block in blocks:
        found += _joined(text, block)
    return sorted(found, key=lambda s: s.start)


def _span(text: str, a: int, b: int) -> Optional[PiiSpan]:
    kind_value = _classify(text[a:b])
    if kind_value is None and re.fullmatch(_X, text[b - 1]):  # 13812345678x: the x is no part of it
        b -= 1
        kind_value = _classify(text[a:b])
    if kind_value is None:
        return None
    kind, value = kind_value
    if kind == PHONE and len(re.sub(_SEP, "", text[a:b])) == 13 and a > 0 and text[a - 1] in _PLUS:
        a -= 1  # +86 belongs to the number
    return PiiSpan(kind, a, b, value)


def _joined(text: str, block: List[Tuple[int, int]]) -> List[PiiSpan]:
    if len(block) < 2:
        return []
    for size in range(len(block), 1, -1):
        for first in range(len(block) - size + 1):
            part = block[first:first + size]
            if any(re.search(_X, text[a:b]) for a, b in part[:-1]):
                continue
            span = _span(text, part[0][0], part[-1][1])
            if span is not None:
                return _joined(text, block[:first]) + [span] + _joined(text, block[first + size:])
    return []


def _names(text: str, numbers: List[PiiSpan], expecting_name: bool) -> List[PiiSpan]:
    taken = [(s.start, s.end) for s in numbers] + [m.span() for m in TOKEN.finditer(text)]

    def free_end(start: int, end: int) -> int:
        """How far a name from `start` may reach: up to the next number or token."""
        if any(a <= start < b for a, b in taken):
            return start
        return min([end] + [a for a, _ in taken if start < a < end])

    if expecting_name:
        answer = text.strip(_ANSWER_PUNCTUATION)
        start = len(text) - len(text.lstrip(_ANSWER_PUNCTUATION))
        name = strip_name_cue(answer)
        start += len(answer) - len(name)
        if name and free_end(start, start + len(name)) == start + len(name) and (
                is_likely_name(name) or _plausible_answer_name(name)):
            return [PiiSpan(NAME, start, start + len(name), name)]
    spans: List[PiiSpan] = []
    for cue in _CUE.finditer(text):
        start = cue.end()
        name = _name_at(text[start:free_end(start, min(len(text), start + 20))])
        if name:
            spans.append(PiiSpan(NAME, start, start + len(name), name))
    return spans


def _name_at(text: str) -> str:
    """The name a text starts with (longest that is likely a name), or ""."""
    dotted = re.match(f"[{_HAN}]{{1,10}}(?:[{_DOT}][{_HAN}]{{1,10}}){{1,3}}", text)
    if dotted and is_likely_name(dotted.group(0)):
        return dotted.group(0)
    run = re.match(f"[{_HAN}]{{2,4}}", text)
    if not run:
        return ""
    candidate = run.group(0)
    for word in _STOP_WORDS:
        cut = candidate.find(word, 1)
        if cut > 0:
            candidate = candidate[:cut]
    for i, char in enumerate(candidate[1:], 1):
        if char in _STOP:
            candidate = candidate[:i]
            break
    for size in range(len(candidate), 1, -1):
        if is_likely_name(candidate[:size]):
            return candidate[:size]
    return ""
