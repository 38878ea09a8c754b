"""Correction of recognised text toward the fund's vocabulary.

Most Whisper errors on fund questions are homophones of domain words (公积金 heard as
攻击金 or 工基金, 余额 as 鱼鵝). Any span whose toneless pinyin matches a term is replaced by
the term; in a measurement (docs/PLATFORM_NOTES.md) this halved the character error. The
term list should come from the bot's vocabulary, never from test transcripts.
"""
import re
from collections.abc import Iterable

from pypinyin import Style, lazy_pinyin

DEFAULT_TERMS = (
    "公积金", "住房公积金", "提取", "余额", "贷款", "还款", "封存", "解封", "启封", "缴存", "汇缴", "补缴",
    "商转公", "组合贷款", "灵活就业", "装修", "租房", "购房", "离职", "退休", "转移", "异地",
    "转人工", "人工客服", "验证码", "身份证", "手机号", "账户", "冲还贷", "贷款额度", "公积金中心",
)


# Commands a caller must never fail to get through: a span that sounds like one in all syllables
# but one is taken for it (Whisper base hears 转人工 as 转员工 or 拽人工 on clear speech, which no
# homophone rule can fix). Only three-syllable commands, and only a whole Han span of that length
# inside a short utterance, so ordinary sentences are left alone.
COMMAND_TERMS = ("转人工",)
COMMAND_MAX_CHARS = 16


def _is_han(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"


_HAN_RUN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]+")


def _syllables(text: str) -> list[str | None]:
    """One toneless syllable per character (None for non-Han), read in context.

    Context matters: matching any heteronym reading turned 可以提取 into 可异地取 (提 is also dī).
    """
    out: list[str | None] = [None] * len(text)
    for run in _HAN_RUN.finditer(text):
        for k, syllable in enumerate(lazy_pinyin(run.group(0), style=Style.NORMAL)):
            out[run.start() + k] = syllable
    return out


class DomainCorrector:
    """Replaces homophones of domain terms; leaves everything else as it was."""

    def __init__(self, terms: Iterable[str] = DEFAULT_TERMS):
        cleaned = {t.strip() for t in terms if t and t.strip()}
        bad = [t for t in cleaned if not all(_is_han(c) for c in t)]
        if bad:
            raise ValueError(f"domain terms must be Chinese characters only, got {sorted(bad)}")
        # Longest first, so 住房公积金 wins over 公积金 where both match.
        self._terms = sorted(((t, tuple(_syllables(t))) for t in cleaned), key=lambda ts: (-len(ts[0]), ts[0]))

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(t for t, _ in self._terms)

    def correct(self, text: str) -> str:
        return self._commands(self._homophones(text))

    @staticmethod
    def _commands(text: str) -> str:
        """A near-miss of a command (one syllable off) in a short utterance becomes the command."""
        if len(text) > COMMAND_MAX_CHARS:
            return text
        syllables = _syllables(text)
        for command in COMMAND_TERMS:
            if command in text:
                continue
            wanted = _syllables(command)
            for i in range(len(text) - len(command) + 1):
                window = syllables[i:i + len(command)]
                if None in window:
                    continue
                if sum(a != b for a, b in zip(window, wanted)) == 1 and window[-1] == wanted[-1]:
                    return text[:i] + command + text[i + len(command):]
        return text

    def _homophones(self, text: str) -> str:
        syllables = _syllables(text)
        protected = self._exact_spans(text)
        out: list[str] = []
        i = 0
        while i < len(text):
            match = None if syllables[i] is None else self._match_at(text, syllables, i, protected)
            if match:
                out.append(match)
                i += len(match)
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def _exact_spans(self, text: str) -> list[tuple[int, int]]:
        """Where a term already stands; a homophone may not be carved out across it."""
        return [(m.start(), m.start() + len(t)) for t, _ in self._terms for m in re.finditer(re.escape(t), text)]

    def _match_at(self, text: str, syllables: list[str | None], i: int, protected: list[tuple[int, int]]) -> str | None:
        for term, term_syllables in self._terms:
            end = i + len(term)
            if tuple(syllables[i:end]) != term_syllables:
                continue
            if text[i:end] == term or not any(s < end and i < e and (s, e) != (i, end) for s, e in protected):
                return term
        return None
