"""FAQ answers from the policy knowledge base, per city.

The NLU names the topic (faq/<topic>, in the response selector output TopicClassifier
writes); the answer text, its city, effective date and whether it is verified come from the
core's knowledge base, so changing an answer or adding a city is a data change. Follow-ups keep the last topic: a city alone
("常州呢") re-answers it for that city, "要带什么材料?" asks for its materials and "那二套呢?"
for its second-home variant (the core picks the sub-answer, falling back to the full one).
When the selector is unsure of the topic the bot asks which of the likeliest topics was meant
(buttons, plus a way to a person) rather than answer a question nobody asked.
In elder mode (the widget's metadata elder_mode: true) the core's short variant is asked for:
the same answer in a few plain sentences.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import core_client

logger = logging.getLogger(__name__)


# The topic's confidence is its own probability (TopicClassifier). Below 0.5 the answer is
# wrong too often (52% right at 0.4-0.5 on held-out examples; with FallbackClassifier at 0.5,
# grouped CV: right 0.870, asked 0.081, wrong 0.049, bench/results/nlu_cv.txt): the citizen
# picks from the likeliest topics instead.
MIN_TOPIC_CONFIDENCE = 0.5
CANDIDATE_TOPICS = 3
TOPIC_NAME = re.compile(r"^[a-z_]{1,40}$")


def _selector(tracker: Tracker) -> Dict[str, Any]:
    message = tracker.latest_message or {}
    if (message.get("intent") or {}).get("name") != "faq":
        return {}
    return (message.get("response_selector") or {}).get("faq") or {}


def _topic_of(key: Optional[str]) -> Optional[str]:
    return key.split("/", 1)[1] if key and "/" in key else None


def selected_topic(message: Dict[str, Any]) -> Optional[str]:
    """The topic the NLU's response selector output names, whatever intent won."""
    response = (((message.get("response_selector") or {}).get("faq") or {}).get("response") or {})
    return _topic_of(response.get("intent_response_key"))


def retrieval_topic(tracker: Tracker) -> Optional[str]:
    """The FAQ topic of the latest message: the response selector's choice, or the topic a
    "which did you mean" button sent (/faq{"faq_topic": ...})."""
    message = tracker.latest_message or {}
    if (message.get("intent") or {}).get("name") != "faq":
        return None
    topic = selected_topic(message)
    if topic:
        return topic
    chosen = next((e.get("value") for e in message.get("entities") or [] if e.get("entity") == "faq_topic"), None)
    return chosen if isinstance(chosen, str) and TOPIC_NAME.match(chosen) else None


def unsure_candidates(tracker: Tracker) -> List[str]:
    """The likeliest topics when the selector's choice is too unsure to answer; else []."""
    selector = _selector(tracker)
    confidence = (selector.get("response") or {}).get("confidence")
    if confidence is None or confidence >= MIN_TOPIC_CONFIDENCE:
        return []
    ranked = [_topic_of(r.get("intent_response_key")) for r in selector.get("ranking") or []]
    top = _topic_of(selector["response"].get("intent_response_key"))
    candidates = list(dict.fromkeys(t for t in [top, *ranked] if t))
    return candidates[:CANDIDATE_TOPICS]


async def topic_titles() -> Dict[str, str]:
    """The knowledge base's topic names in Chinese (core GET /policy/topics); {} if unreachable."""
    try:
        return {t["topic"]: t["title"] for t in (await core_client.get("/policy/topics"))["topics"]}
    except (core_client.CoreError, core_client.CoreUnavailable, KeyError, TypeError):
        return {}


def topic_button(topic: str, titles: Dict[str, str]) -> Dict[str, str]:
    return {"title": titles[topic], "payload": '/faq{"faq_topic": "%s"}' % topic}


def requested_aspect(tracker: Tracker) -> Optional[str]:
    """Which part of the topic the latest message asks for: materials, first or second home."""
    message = tracker.latest_message or {}
    if (message.get("intent") or {}).get("name") == "ask_materials":
        return "materials"
    for entity in message.get("entities") or []:
        if entity.get("entity") == "house_order" and entity.get("value") in ("first", "second"):
            return entity["value"]
    return None


def answer_params(tracker: Tracker, city: Optional[str], aspect: Optional[str]) -> Dict[str, Any]:
    """Query parameters for the core's answer; the short variant when the latest message is in elder mode."""
    params: Dict[str, Any] = {"city": city, "aspect": aspect}
    if ((tracker.latest_message or {}).get("metadata") or {}).get("elder_mode") is True:
        params["variant"] = "short"
    return params


class ActionAnswerFaq(Action):
    def name(self) -> Text:
        return "action_answer_faq"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        candidates = unsure_candidates(tracker)
        if candidates:
            return await self._ask_which_topic(candidates, dispatcher)
        topic = retrieval_topic(tracker) or tracker.get_slot("faq_topic")
        if not topic:
            dispatcher.utter_message(response="utter_ask_topic_first")
            return []
        city = tracker.get_slot("city")
        aspect = requested_aspect(tracker)
        try:
            answer = await core_client.get(f"/policy/answers/{topic}", params=answer_params(tracker, city, aspect))
        except core_client.CoreError as exc:
            logger.warning("faq.answer.refused topic=%s status=%s", topic, exc.status)
            dispatcher.utter_message(response="utter_default")
            return []
        except core_client.CoreUnavailable:
            dispatcher.utter_message(response=f"utter_faq/{topic}")
            return [SlotSet("faq_topic", topic)]
        dispatcher.utter_message(text=answer["text"], buttons=answer.get("buttons") or None)
        logger.info("faq.answered topic=%s aspect=%s city=%s verified=%s",
                    topic, answer.get("aspect"), answer.get("city"), answer.get("verified"))
        events: List[Dict[Text, Any]] = [SlotSet("faq_topic", topic)]
        if answer.get("city") and answer["city"] != city:
            events.append(SlotSet("city", answer["city"]))  # canonical name: 常州市 → 常州
        return events

    async def _ask_which_topic(self, candidates: List[str], dispatcher: CollectingDispatcher) -> List[Dict[Text, Any]]:
        """One clarifying question with the likeliest topics as buttons, and a way to a person."""
        titles = await topic_titles()
        buttons = [topic_button(t, titles) for t in candidates if t in titles]
        if not buttons:
            dispatcher.utter_message(response="utter_default")
            return []
        buttons.append({"title": "都不是，转人工", "payload": "/request_human"})
        dispatcher.utter_message(response="utter_which_topic", buttons=buttons)
        dispatcher.utter_message(json_message={"type": "clarify"})  # the gateway counts it (/metrics, stats) and drops it
        logger.info("faq.unsure candidates=%s", ",".join(candidates))
        return []
