"""FAQ answers from the policy knowledge base, per city.

The response selector picks the topic (faq/<topic>); the answer text, its city, effective
date and whether it is verified come from the core's knowledge base, so changing an
answer or adding a city is a data change. Follow-ups keep the last topic: a city alone
("常州呢") re-answers it for that city, "要带什么材料?" asks for its materials and "那二套呢?"
for its second-home variant (the core picks the sub-answer, falling back to the full one).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import core_client

logger = logging.getLogger(__name__)


def retrieval_topic(tracker: Tracker) -> Optional[str]:
    """The FAQ topic chosen by the response selector for the latest message, if any."""
    message = tracker.latest_message or {}
    if (message.get("intent") or {}).get("name") != "faq":
        return None
    key = (((message.get("response_selector") or {}).get("faq") or {}).get("response") or {}).get(
        "intent_response_key"
    )
    if not key or "/" not in key:
        return None
    return key.split("/", 1)[1]


def requested_aspect(tracker: Tracker) -> Optional[str]:
    """Which part of the topic the latest message asks for: materials, first or second home."""
    message = tracker.latest_message or {}
    if (message.get("intent") or {}).get("name") == "ask_materials":
        return "materials"
    for entity in message.get("entities") or []:
        if entity.get("entity") == "house_order" and entity.get("value") in ("first", "second"):
            return entity["value"]
    return None


class ActionAnswerFaq(Action):
    def name(self) -> Text:
        return "action_answer_faq"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        topic = retrieval_topic(tracker) or tracker.get_slot("faq_topic")
        if not topic:
            dispatcher.utter_message(response="utter_ask_topic_first")
            return []
        city = tracker.get_slot("city")
        aspect = requested_aspect(tracker)
        try:
            answer = await core_client.get(f"/policy/answers/{topic}", params={"city": city, "aspect": aspect})
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
