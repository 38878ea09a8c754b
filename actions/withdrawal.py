"""Withdrawal pre-check: which kinds the verified person qualifies for now, and why not.

The kind comes from the `withdrawal_type` entity (kept in a slot so it survives the
verification form); without one, every kind is checked ("我能取多少"). Eligibility,
caps and materials are the core's rules; this action only lays them out: what applies
first, with the maximum and which materials are fetched automatically (免提交) or must
be uploaded, then what does not apply and why.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.application import open_kinds, say_offer
from actions.balance import yuan
from actions.person_data import get_for_person

logger = logging.getLogger(__name__)

KINDS = ("rent", "purchase", "retirement", "leave_job", "renovation", "property_fee",
         "illness", "loan_repayment", "other")
NONE_MARK = "无"


def requested_kind(tracker: Tracker) -> str:
    """The kind named in the question; the slot only when continuing after verification."""
    if (tracker.latest_message.get("intent") or {}).get("name") == "check_withdrawal":
        kind = next(tracker.get_latest_entity_values("withdrawal_type"), None)
    else:
        kind = tracker.get_slot("withdrawal_type")
    return kind if kind in KINDS else "all"


def _listing(items: List[Any]) -> str:
    return "、".join(str(i) for i in items) if items else NONE_MARK


def say_result(dispatcher: CollectingDispatcher, result: Dict[str, Any]) -> None:
    if not result.get("eligible"):
        dispatcher.utter_message(response="utter_withdrawal_not_eligible", kind_name=result["kind_name"],
                                 reasons="；".join(result.get("reasons") or []) or NONE_MARK)
        return
    materials = dict(auto_materials=_listing(result.get("auto_materials") or []),
                     upload_materials=_listing(result.get("upload_materials") or []))
    if result.get("max_amount") is None:
        dispatcher.utter_message(response="utter_withdrawal_eligible_uncapped",
                                 kind_name=result["kind_name"], **materials)
    else:
        dispatcher.utter_message(response="utter_withdrawal_eligible", kind_name=result["kind_name"],
                                 max_amount=yuan(result["max_amount"]), **materials)


class ActionCheckWithdrawal(Action):
    def name(self) -> Text:
        return "action_check_withdrawal"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        kind = requested_kind(tracker)
        check, stop = await get_for_person(tracker, dispatcher, "/persons/{person_ref}/withdrawal-check",
                                           "withdrawal", params={"kind": kind})
        if check is None:
            return stop

        results = check.get("results") or []
        eligible = [r for r in results if r.get("eligible")]
        if kind == "all":
            dispatcher.utter_message(response="utter_withdrawal_overview", city=check.get("city", ""),
                                     eligible_count=len(eligible))
        for result in eligible + [r for r in results if not r.get("eligible")]:
            say_result(dispatcher, result)
        if results and not eligible and kind == "all":
            dispatcher.utter_message(response="utter_withdrawal_none_eligible")
        unverified = [r for r in results if r.get("verified") is False]
        if unverified:
            dispatcher.utter_message(response="utter_policy_unverified", city=check.get("city", ""),
                                     effective_date=unverified[0].get("effective_date") or NONE_MARK)
        offered = say_offer(dispatcher, eligible, await open_kinds(tracker.get_slot("person_ref")) if eligible else [])
        logger.info("withdrawal.checked kind=%s results=%d eligible=%d", kind, len(results), len(eligible))
        return [SlotSet("withdrawal_type", None), SlotSet("application_offered", offered)]
