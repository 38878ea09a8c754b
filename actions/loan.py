"""Loan estimate: ceiling, term and monthly payment (等额本息 and 等额本金).

Works for everyone: with a verified person the core computes the ceiling from their
balance, deposits and age; without one it uses the city's general limits, and the
answer says how to get a personal figure. Amount, years and house order come from the
latest message's entities (numbers after the numeral normaliser).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import core_client
from actions.balance import percent, yuan
from actions.verification import is_expired, require_person, reset_events

logger = logging.getLogger(__name__)

HOUSE_ORDER_NAMES = {"first": "首套房", "second": "二套房"}


def _number(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def loan_request(tracker: Tracker, person_ref: Optional[str]) -> Dict[str, Any]:
    """The estimate request from this message's entities; absent values are left to the core."""
    amount = _number(next(tracker.get_latest_entity_values("amount"), None))
    years = _number(next(tracker.get_latest_entity_values("years"), None))
    order = next(tracker.get_latest_entity_values("house_order"), None)
    city = next(tracker.get_latest_entity_values("city"), None) or tracker.get_slot("city")
    body: Dict[str, Any] = {
        "person_ref": person_ref,
        "city": city,
        "amount": amount,
        "years": int(years) if years else None,
        "house_order": order if order in HOUSE_ORDER_NAMES else "first",
    }
    return {k: v for k, v in body.items() if v is not None}


class ActionEstimateLoan(Action):
    def name(self) -> Text:
        return "action_estimate_loan"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        events: List[EventType] = []
        person_ref = require_person(tracker)
        body = loan_request(tracker, person_ref)
        try:
            try:
                estimate = await core_client.post("/loan/estimate", body)
            except core_client.CoreError as exc:
                if not (person_ref and is_expired(exc)):
                    raise
                # Verification lapsed: still answer, with the general figures.
                dispatcher.utter_message(response="utter_loan_verification_expired")
                events = reset_events()
                person_ref = None
                body = {k: v for k, v in body.items() if k != "person_ref"}
                estimate = await core_client.post("/loan/estimate", body)
        except core_client.CoreUnavailable:
            dispatcher.utter_message(response="utter_core_unavailable")
            return events
        except core_client.CoreError as exc:
            logger.info("loan.estimate.refused status=%s code=%s", exc.status, core_client.error_code(exc))
            dispatcher.utter_message(response="utter_loan_estimate_refused",
                                     reason=core_client.error_field(exc, "message") or "")
            return events

        self._say(dispatcher, estimate, body)
        if not person_ref and "amount" not in body:
            dispatcher.utter_message(response="utter_loan_verify_hint")
        logger.info("loan.estimated personal=%s amount_given=%s years=%s", bool(person_ref),
                    "amount" in body, estimate.get("years"))
        return events

    @staticmethod
    def _say(dispatcher: CollectingDispatcher, estimate: Dict[str, Any], body: Dict[str, Any]) -> None:
        ceiling = estimate.get("ceiling")
        amount = estimate.get("amount") or body.get("amount") or ceiling
        installment = estimate.get("equal_installment") or {}
        principal = estimate.get("equal_principal") or {}
        dispatcher.utter_message(
            response="utter_loan_estimate",
            city=estimate.get("city", ""),
            house_order_name=HOUSE_ORDER_NAMES[body["house_order"]],
            ceiling=yuan(ceiling),
            amount=yuan(amount),
            years=estimate.get("years"),
            max_years=estimate.get("max_years"),
            rate=percent(estimate.get("rate")),
            monthly=yuan(installment.get("monthly")),
            installment_interest=yuan(installment.get("total_interest")),
            first_month=yuan(principal.get("first_month")),
            monthly_decrease=yuan(principal.get("monthly_decrease")),
            last_month=yuan(principal.get("last_month")),
            principal_interest=yuan(principal.get("total_interest")),
        )
        if body.get("amount") and ceiling is not None and body["amount"] > float(ceiling):
            dispatcher.utter_message(response="utter_loan_amount_over_ceiling", ceiling=yuan(ceiling))
        notes = estimate.get("notes") or []
        if notes:
            dispatcher.utter_message(response="utter_loan_notes", notes="\n".join(f"· {n}" for n in notes))
        if estimate.get("verified") is False:
            dispatcher.utter_message(response="utter_policy_unverified", city=estimate.get("city", ""),
                                     effective_date=estimate.get("effective_date") or "—")
