"""Answers FAQ questions from the knowledge base while Rasa cannot (starting, restarting, down).

A citizen should never meet a dead bot. The gateway keeps a light retrieval index (BM25 over
character unigrams and bigrams) of the bot's own training examples in nlu_data/ — every intent,
not only the FAQ topics, so that "查余额" is recognised as a transaction rather than pushed
onto the nearest FAQ — and asks the core for the answer of the winning topic: the same text
the bot would give. It answers only when one FAQ topic clearly wins; a transaction gets "briefly
unavailable, here is the hotline", anything else the usual 503. Nothing is queued for later:
a turn answered here never reaches Rasa.
"""
from __future__ import annotations

import logging
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import httpx
import yaml

from bot.components.chinese_text import normalize
from gateway.internal_http import internal_client

logger = logging.getLogger(__name__)

RESTARTING_NOTE = ("（智能助手正在重启，以下答复直接取自公积金知识库。查余额、提取预审等业务请稍后再试；"
                   "需要人工请拨打 12329 服务热线。）")
TRANSACTIONS_PAUSED = ("智能助手正在重启，查余额、提取预审、贷款试算和办理进度暂时无法查询，请一两分钟后再试；"
                       "急需办理请拨打 12329 服务热线联系人工。")
TRANSACTION_INTENTS = {"check_balance", "check_withdrawal", "estimate_loan", "check_progress", "inform_identity",
                       "verify_identity"}

_ANNOTATION = re.compile(r"\[([^\]]+)\]\([^)]*\)|\[([^\]]+)\]\{[^}]*\}")
_CITY_ANNOTATION = re.compile(r"\[[^\]]+\]\(city\)|\[[^\]]+\]\{\"entity\": ?\"city\"[^}]*\}")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[\u4e00-\u9fff]|[a-z0-9]+")


@dataclass(frozen=True)
class Match:
    label: str       # "faq/withdraw_rent", "check_balance", "out_of_scope", ...
    score: float
    runner_up: float  # best score of any other label


def terms(text: str) -> list[str]:
    """Character unigrams and bigrams of the normalised text (ASCII words kept whole)."""
    units = _WORD.findall(normalize(text))
    return units + [a + b for a, b in zip(units, units[1:])]


def load_examples(nlu_dir: Path) -> list[tuple[str, str]]:
    """(label, text) for every example in nlu_data/*.yml; entity annotations are reduced to their text."""
    examples: list[tuple[str, str]] = []
    for path in sorted(nlu_dir.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            label = block.get("intent") if isinstance(block, dict) else None
            if not label:
                continue
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    # A city says nothing about the topic: dropped here, as it is from the question.
                    text = _CITY_ANNOTATION.sub("", line[2:])
                    text = _ANNOTATION.sub(lambda m: m.group(1) or m.group(2), text).strip()
                    if text:
                        examples.append((label, text))
    return examples


class FaqIndex:
    """BM25 over the examples (document i is example i); a label's score is its best example's."""

    TOP_K = 5

    def __init__(self, examples: Iterable[tuple[str, str]], k1: float = 1.2, b: float = 0.75):
        self._labels: list[str] = []
        self._lengths: list[int] = []
        self._postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for label, text in examples:
            counts = Counter(terms(text))
            doc = len(self._labels)  # one document per example, even an empty one: doc ids stay aligned
            self._labels.append(label)
            self._lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self._postings[term].append((doc, tf))
        n = max(len(self._labels), 1)
        self._avg_len = sum(self._lengths) / n if self._lengths else 1.0
        self._idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self._postings.items()}
        self._k1, self._b = k1, b

    def __len__(self) -> int:
        return len(self._labels)

    def best(self, text: str, exclude_doc: Optional[int] = None) -> Optional[Match]:
        scores: dict[int, float] = defaultdict(float)
        for term in set(terms(text)):
            idf = self._idf.get(term)
            if idf is None:
                continue
            for doc, tf in self._postings[term]:
                if doc == exclude_doc:
                    continue
                norm = self._k1 * (1 - self._b + self._b * self._lengths[doc] / self._avg_len)
                scores[doc] += idf * tf * (self._k1 + 1) / (tf + norm)
        per_label: dict[str, list[float]] = defaultdict(list)
        for doc, score in scores.items():
            per_label[self._labels[doc]].append(score)
        if not per_label:
            return None
        by_label = {label: sum(sorted(s, reverse=True)[:self.TOP_K]) / self.TOP_K for label, s in per_label.items()}
        ranked = sorted(by_label.items(), key=lambda kv: kv[1], reverse=True)
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        return Match(label=ranked[0][0], score=ranked[0][1], runner_up=runner_up)

    def label_of(self, doc: int) -> str:
        return self._labels[doc]


@dataclass(frozen=True)
class Thresholds:
    """Chosen on leave-one-out over the examples (bench/faq_fallback.py prints the trade-off)."""
    min_score: float = 6.0
    min_margin: float = 1.25  # best / runner-up


def decide(match: Optional[Match], thresholds: Thresholds) -> Optional[str]:
    """The label to act on, or None when no label clearly wins."""
    if match is None or match.score < thresholds.min_score:
        return None
    if match.runner_up and match.score / match.runner_up < thresholds.min_margin:
        return None
    return match.label


def known_cities(policy_dir: Path) -> dict[str, str]:
    """City names and aliases from the knowledge base's city files → the canonical name."""
    names: dict[str, str] = {}
    for path in sorted((policy_dir / "cities").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        name = data.get("name")
        if name:
            for alias in [name, *(data.get("aliases") or [])]:
                names[str(alias)] = name
    return names


class FaqFallback:
    """What the gateway says itself when Rasa cannot answer a turn."""

    def __init__(self, index: FaqIndex, cities: dict[str, str], core_url: str, core_token: str,
                 timeout_s: float, thresholds: Thresholds = Thresholds(),
                 transport: Optional[httpx.AsyncBaseTransport] = None):
        self._index = index
        self._cities = cities  # alias -> canonical name
        self._aliases = sorted(cities, key=len, reverse=True)  # longest first: 马鞍山市 before 马鞍山
        self._thresholds = thresholds
        self._http = internal_client(base_url=core_url, timeout=timeout_s, transport=transport,
                                     headers={"Authorization": f"Bearer {core_token}"})

    @classmethod
    def from_files(cls, nlu_dir: Path, policy_dir: Path, core_url: str, core_token: str,
                   timeout_s: float) -> "FaqFallback":
        return cls(FaqIndex(load_examples(nlu_dir)), known_cities(policy_dir), core_url, core_token, timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    def city_in(self, text: str) -> Optional[str]:
        """The first known city alias in the text (longest aliases first), as written."""
        return next((alias for alias in self._aliases if alias in text), None)

    async def answer(self, text: str) -> Optional[list[dict]]:
        """Bot messages for this text, or None when the gateway should say the bot is unavailable."""
        text = normalize(text)
        city = self.city_in(text)
        label = decide(self._index.best(text.replace(city, "") if city else text), self._thresholds)
        if label is None:
            return None
        if label in TRANSACTION_INTENTS:
            return [{"text": TRANSACTIONS_PAUSED}]
        if not label.startswith("faq/"):
            return None
        topic = label.split("/", 1)[1]
        params = {"city": self._cities[city]} if city else {}
        try:
            resp = await self._http.get(f"/policy/answers/{topic}", params=params)
            resp.raise_for_status()
            answer = resp.json()["text"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            logger.warning("faq_fallback.core.failed topic=%s error=%s", topic, type(exc).__name__)
            return None
        logger.info("faq_fallback.answered topic=%s city=%s", topic, params.get("city", ""))
        return [{"text": f"{RESTARTING_NOTE}\n\n{answer}"}]
