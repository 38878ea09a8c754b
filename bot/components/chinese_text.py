"""Chinese text normalisation as plain functions (no Rasa import, so the app venv tests them).

Traditional→simplified (OpenCC t2s plus a domain fix-up table), full-width→half-width and
lower-case ASCII. Every mapping keeps the text's length, so entity offsets annotated in
training data stay valid. bot/components/normalizer.py runs it inside the Rasa pipeline.
"""
from __future__ import annotations

# OpenCC's t2s keeps some variants our data never uses (帳戶 -> 帐户, not 账户).
DOMAIN_FIXUPS = {
    "帐户": "账户",
    "帐号": "账号",
    "余额查寻": "余额查询",
    "公基金": "公积金",
    "公机金": "公积金",
    "公积全": "公积金",
    "公积今": "公积金",
    "公积经": "公积金",
    "公积金货款": "公积金贷款",
    "公积金代款": "公积金贷款",
    "提区": "提取",
    "伤转公": "商转公",
}


def to_half_width(text: str) -> str:
    """Full-width ASCII (U+FF01..FF5E) and the ideographic space to half-width."""
    out = []
    for ch in text:
        code = ord(ch)
        if code == 0x3000:
            out.append(" ")
        elif 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


class _Converter:
    """Lazily created OpenCC converter: building it at import time slows every rasa command."""

    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            import opencc

            cls._instance = opencc.OpenCC("t2s")
        return cls._instance


def normalize(text: str) -> str:
    """Simplified, half-width, lower-case ASCII, same length as the input where possible."""
    if not text:
        return text
    converted = _Converter.get().convert(to_half_width(text))
    if len(converted) != len(text):  # a phrase mapping changed the length: fall back per character
        converted = "".join(_Converter.get().convert(ch) if len(_Converter.get().convert(ch)) == 1 else ch
                            for ch in to_half_width(text))
    for wrong, right in DOMAIN_FIXUPS.items():
        if len(wrong) == len(right):
            converted = converted.replace(wrong, right)
    return converted.lower()


# ---- long messages: where the question is --------------------------------------------------
# A message-board post tells a situation over several sentences and asks at the end (or in
# the middle). The topic model reads the whole post and, as a second block of features, the
# interrogative clauses alone (bot/components/topic_model.py), so the question decides and
# the situation adds evidence instead of drowning it.
import re as _re  # noqa: E402

_SENTENCE_END = _re.compile(r"(?<=[。！？!?；;\n…])")
_CLAUSE_END = _re.compile(r"(?<=[，,：:、])")
_INTERROGATIVE = _re.compile(
    r"[?？]|吗|呢|么|怎么|怎样|咋|如何|能不能|能否|可不可以|可以不|是不是|是否|有没有|多少|多久|多长|几[个天年月次]|"
    r"哪|什么|啥|为何|为什么|请问|想问|咨询|求助|求解|麻烦告诉|请告知|请帮|帮忙"
)
SHORT_MESSAGE = 30  # characters: below this the whole message is the question
LONG_SENTENCE = 8  # characters: a sentence longer than this is split again at its commas


def clauses(text: str) -> list:
    """Sentences split at 。！？；/new lines, long sentences again at commas; stripped, non-empty."""
    out = []
    for sentence in _SENTENCE_END.split(text):
        parts = _CLAUSE_END.split(sentence) if len(sentence) > LONG_SENTENCE else [sentence]
        out.extend(p.strip(" ，,：:、。；;！!…\n") for p in parts)
    return [p for p in out if p]


def is_question(clause: str) -> bool:
    return bool(_INTERROGATIVE.search(clause))


def question_focus(text: str) -> str:
    """The part of a long message that asks: its interrogative clauses (with the clause just
    before each, which usually names what is asked about). Short messages, and posts where no
    clause asks (a story whose question is only implied), are returned whole."""
    if len(text) < SHORT_MESSAGE:
        return text
    parts = clauses(text)
    if len(parts) < 2:
        return text
    asking = [i for i, part in enumerate(parts) if is_question(part)]
    if not asking:
        return text
    keep = sorted({j for i in asking for j in (i - 1, i) if j >= 0})
    focus = "，".join(parts[j] for j in keep)
    return focus if focus else text
