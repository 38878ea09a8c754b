"""Handoff triggers: start a video handoff, offer it to those who need it, and after two fallbacks.

The action server never touches the queue: it sends the custom payload {"type": "handoff_start"}
and the gateway queues the citizen (or offers appointment slots outside staff hours). An offer is
a response with yes/no buttons plus {"type": "handoff_offer"} so the widget can show it big.
Every unanswered turn (low NLU confidence or out of scope) also sends {"type": "unanswered"},
which the gateway counts and strips; the second unanswered turn in a row offers a person.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.application import offered_application_last_turn
from actions.turns import previous_bot_turn
from actions.faq import selected_topic, topic_button, topic_titles

logger = logging.getLogger(__name__)
FALLBACKS_BEFORE_OFFER = 2
UNANSWERED_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
# An unclear message offers the likeliest of these as buttons ("did you mean"). The floor is
# a judgement, not a measurement: a runner-up under 0.15 is noise, and a wrong button costs
# the citizen only a glance because "都不是，转人工" is always there.
MIN_GUESS_CONFIDENCE = 0.15
MAX_GUESSES = 3
TRANSACTION_TITLES = {"check_balance": "查询公积金余额", "check_withdrawal": "提取条件预审",
                      "estimate_loan": "贷款额度试算", "check_progress": "查询办理进度"}


def elder_mode(tracker: Tracker) -> bool:
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    return bool(metadata.get("elder_mode"))


def needs_priority(tracker: Tracker) -> bool:
    return bool(tracker.get_slot("elderly") or tracker.get_slot("disabled") or elder_mode(tracker))


def priority_reason(tracker: Tracker) -> str:
    if tracker.get_slot("elderly"):
        return "elderly"
    if tracker.get_slot("disabled"):
        return "disabled"
    return "elder_mode" if elder_mode(tracker) else "request"


def offered_video_last_turn(tracker: Tracker) -> bool:
    """Whether the bot's turn just before the citizen's latest message offered a video handoff
    (every offer carries the custom payload {"type": "handoff_offer"})."""
    return any(((event.get("data") or {}).get("custom") or {}).get("type") == "handoff_offer"
               for event in previous_bot_turn(tracker))


async def likely_meanings(tracker: Tracker) -> List[Dict[str, str]]:
    """Buttons for what an unclear message most likely meant: the transactions and the FAQ
    topic the NLU ranked next after giving up (FallbackClassifier keeps the ranking)."""
    message = tracker.latest_message or {}
    buttons: List[Dict[str, str]] = []
    for entry in message.get("intent_ranking") or []:
        name, confidence = entry.get("name"), entry.get("confidence") or 0.0
        if confidence < MIN_GUESS_CONFIDENCE:
            continue
        if name in TRANSACTION_TITLES:
            buttons.append({"title": TRANSACTION_TITLES[name], "payload": f"/{name}"})
        elif name == "faq":
            topic = selected_topic(message)
            titles = await topic_titles() if topic else {}
            if topic in titles:
                buttons.append(topic_button(topic, titles))
        if len(buttons) == MAX_GUESSES:
            break
    return buttons


def fallback_streak(tracker: Tracker) -> int:
    """How many of the latest user messages in a row the bot could not answer
    (low NLU confidence, or outside the fund's business)."""
    streak = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        if ((event.get("parse_data") or {}).get("intent") or {}).get("name") not in UNANSWERED_INTENTS:
            break
        streak += 1
    return streak


class ActionStartHandoff(Action):
    def name(self) -> Text:
        return "action_start_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        reason = priority_reason(tracker)
        dispatcher.utter_message(json_message={"type": "handoff_start", "priority": needs_priority(tracker),
                                               "reason": reason})
        logger.info("handoff.start.requested reason=%s", reason)
        return [SlotSet("handoff_offered", True)]


class ActionOfferHandoff(Action):
    """Offers video once to elderly or disabled citizens; the verification action can follow up with it."""

    def name(self) -> Text:
        return "action_offer_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        events: List[Dict[Text, Any]] = []
        declared = (tracker.latest_message or {}).get("intent", {}).get("name") == "declare_disability"
        if declared:
            events.append(SlotSet("disabled", True))
        if tracker.get_slot("handoff_offered") or not (declared or needs_priority(tracker)):
            return events
        reason = "disabled" if declared else priority_reason(tracker)
        dispatcher.utter_message(response="utter_handoff_offer")
        dispatcher.utter_message(json_message={"type": "handoff_offer", "reason": reason})
        return events + [SlotSet("handoff_offered", True)]


class ActionHandleFallback(Action):
    """Says it did not understand (or that the question is outside the fund's business),
    offering the likeliest meanings as buttons when the NLU had a guess; the second
    unanswered turn in a row offers a person instead, so nobody is stuck."""

    def name(self) -> Text:
        return "action_handle_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(json_message={"type": "unanswered"})
        if fallback_streak(tracker) >= FALLBACKS_BEFORE_OFFER:
            dispatcher.utter_message(response="utter_handoff_offer_fallback")
            dispatcher.utter_message(json_message={"type": "handoff_offer", "reason": "fallback"})
            return []
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        if intent == "out_of_scope":
            dispatcher.utter_message(response="utter_out_of_scope")
            return []
        guesses = await likely_meanings(tracker)
        if guesses:
            guesses.append({"title": "都不是，转人工", "payload": "/request_human"})
            dispatcher.utter_message(response="utter_which_topic", buttons=guesses)
            return []
        dispatcher.utter_message(response="utter_default")
        return []


class ActionAnswerAffirm(Action):
    """A bare "好的"/"可以" means yes only as an answer: right after a video offer it accepts
    it, right after an offer to apply online it starts the application; anywhere else it is an acknowledgement, so the bot asks what else it can do instead
    of starting a video call nobody asked for or saying it did not understand."""

    def name(self) -> Text:
        return "action_answer_affirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        if offered_video_last_turn(tracker):
            return [FollowupAction("action_start_handoff")]
        if offered_application_last_turn(tracker):
            return [FollowupAction("application_form")]
        dispatcher.utter_message(response="utter_anything_else")
        return []
