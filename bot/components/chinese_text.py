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
