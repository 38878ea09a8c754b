"""Policy knowledge base: FAQ answers as data, a national default per topic plus city files.

fund/policy/faq/<topic>.yml holds the national answer; fund/policy/cities/<city>.yml
overrides topics for one city (adding a city is adding a file). Every entry carries an
effective date, a source and whether it was verified; unverified facts are always sent
with "以当地公积金中心最新公告为准" so the bot never states them as certain.

Follow-up questions are answered from the same entry: an aspect ("materials" for "要带什么
材料?", "first"/"second" for "那二套呢?") picks a sub-answer, looked up in the city entry
first and then in the national one, so a city file only holds what differs.

Every entry also has a `short` text: the same answer in 2–4 plain sentences, no fact the full
text lacks, for elder mode (`variant="short"`); the caveats and the way to a person stay.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Optional

import yaml
from pydantic import BaseModel, Field

UNVERIFIED_NOTE = "（提示：该信息尚未经当地公积金中心核实，以当地公积金中心最新公告为准。）"
DEFAULT_NEXT_STEP = "如需进一步帮助，可拨打 12329 服务热线，或说“转人工”联系工作人员。"
SHORT_NEXT_STEP = "需要帮助，请按“转人工”找工作人员。"
SHORT_ASK_CITY = "各城市标准不同。请告诉我您在哪个城市缴存。"


class UnknownTopic(LookupError):
    """No knowledge-base file exists for the requested topic."""


ASPECTS = ("materials", "first", "second")
VARIANTS = ("full", "short")


class Entry(BaseModel):
    text: str = Field(min_length=1)
    short: str = Field(min_length=1)
    effective_date: dt.date
    verified: bool
    source: str = Field(min_length=1)
    next_step: Optional[str] = None
    materials: Optional[str] = None
    variants: dict[str, str] = {}

    def sub_answer(self, aspect: str) -> Optional[str]:
        """The text for one aspect, or None when this entry does not cover it."""
        if aspect == "materials":
            return self.materials
        return self.variants.get(aspect)


class Topic(BaseModel):
    topic: str
    title: str
    city_specific: bool = False
    national: Entry


class City(BaseModel):
    name: str
    aliases: list[str] = []
    faq: dict[str, Entry] = {}


class Answer(BaseModel):
    topic: str
    title: str
    aspect: Optional[str] = None
    variant: str = "full"
    city: Optional[str]
    text: str
    verified: bool
    effective_date: dt.date
    source: str


class KnowledgeBase:
    def __init__(self, topics: dict[str, Topic], cities: dict[str, City]):
        self.topics = topics
        self.cities = cities
        self._city_by_name = {alias: c for c in cities.values() for alias in [c.name, *c.aliases]}

    @classmethod
    def load(cls, policy_dir: Path) -> "KnowledgeBase":
        topics = {}
        for path in sorted((policy_dir / "faq").glob("*.yml")):
            topic = Topic.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
            if topic.topic != path.stem:
                raise ValueError(f"{path}: topic '{topic.topic}' does not match the file name")
            topics[topic.topic] = topic
        cities = {}
        for path in sorted((policy_dir / "cities").glob("*.yml")):
            city = City.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
            unknown = set(city.faq) - set(topics)
            if unknown:
                raise ValueError(f"{path}: overrides unknown topics {sorted(unknown)}")
            cities[city.name] = city
        return cls(topics, cities)

    def resolve_city(self, name: Optional[str]) -> Optional[City]:
        if not name:
            return None
        name = name.strip()
        return self._city_by_name.get(name) or self._city_by_name.get(name.removesuffix("市"))

    def answer(self, topic_name: str, city_name: Optional[str] = None,
               aspect: Optional[str] = None, variant: str = "full") -> Answer:
        """The answer for a topic (and city, and aspect); variant "short" gives the elder-mode text:
        the short sentences, the caveat when unverified, and no source line."""
        short = variant == "short"
        topic = self.topics.get(topic_name)
        if topic is None:
            raise UnknownTopic(topic_name)
        city = self.resolve_city(city_name)
        candidates = [city.faq[topic_name]] if city and topic_name in city.faq else []
        candidates.append(topic.national)
        entry, text = candidates[0], candidates[0].text
        if aspect in ASPECTS:
            covering = next((e for e in candidates if e.sub_answer(aspect)), None)
            if covering is not None:
                entry, text = covering, covering.sub_answer(aspect) or ""
            else:
                aspect = None
        else:
            aspect = None
            if short:
                text = entry.short
        parts = []
        if city and entry is not topic.national:
            parts.append(f"【{city.name}】")
        elif city and topic_name in city.faq:
            parts.append(f"【{city.name}】以下为通行做法，{city.name}的具体要求以当地公积金中心公布为准：")
        elif topic.city_specific and city_name:
            parts.append(f"暂未收录“{city.name if city else city_name}”的具体规定，以下是全国通行规定：")
        parts.append(text.strip())
        if not short:
            parts.append(f"（依据：{entry.source}；自{entry.effective_date:%Y年%-m月%-d日}起适用。）")
        if not entry.verified:
            parts.append(UNVERIFIED_NOTE)
        if topic.city_specific and not city_name:
            parts.append(SHORT_ASK_CITY if short else
                         "各城市的具体标准不同，告诉我您在哪个城市缴存（例如：常州、马鞍山），我按当地规定回答。")
        if short:
            parts.append(SHORT_NEXT_STEP)
        else:
            parts.append(next((e.next_step for e in (entry, *candidates) if e.next_step), DEFAULT_NEXT_STEP))
        return Answer(
            topic=topic_name, title=topic.title, aspect=aspect, variant="short" if short else "full",
            city=city.name if city else None,
            text="\n".join(parts), verified=entry.verified,
            effective_date=entry.effective_date, source=entry.source,
        )


@lru_cache(maxsize=4)
def load_knowledge_base(policy_dir: Path) -> KnowledgeBase:
    return KnowledgeBase.load(policy_dir)
