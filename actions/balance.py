"""Balance and the last 12 months of deposits for the verified person."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.person_data import get_for_person

logger = logging.getLogger(__name__)


def yuan(amount: Any) -> str:
    """1234.5 -> "1,234.50": amounts are always shown with thousands separators and fen."""
    return f"{float(amount or 0):,.2f}"


def percent(ratio: Any) -> str:
    """0.12 or 12 -> "12%" (the core sends fractions; tolerate percentages)."""
    value = float(ratio or 0)
    value = value * 100 if value <= 1 else value
    return f"{value:g}%"


def deposit_lines(deposits: List[Dict[str, Any]]) -> str:
    """One line per month, newest first, as the core sends them."""
    return "\n".join(
        f"{d['month']}：{yuan(d['amount'])} 元（单位 {yuan(d.get('employer_part'))}，个人 {yuan(d.get('personal_part'))}）"
        for d in deposits
    )


class ActionCheckBalance(Action):
    def name(self) -> Text:
        return "action_check_balance"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        account, stop = await get_for_person(tracker, dispatcher, "/persons/{person_ref}/balance", "balance")
        if account is None:
            return stop

        dispatcher.utter_message(
            response="utter_balance",
            name_masked=account.get("name_masked", ""),
            id_masked=account.get("id_masked", ""),
            balance=yuan(account.get("balance")),
            account_status_name=account.get("account_status_name", ""),
            deposit_base=yuan(account.get("deposit_base")),
            employer_ratio=percent(account.get("employer_ratio")),
            personal_ratio=percent(account.get("personal_ratio")),
            monthly_deposit=yuan(account.get("monthly_deposit")),
            employer_masked=account.get("employer_masked") or "—",
        )
        deposits = account.get("deposits") or []
        if deposits:
            dispatcher.utter_message(response="utter_deposit_records", months=len(deposits),
                                     deposit_lines=deposit_lines(deposits))
        else:
            dispatcher.utter_message(response="utter_no_deposit_records")
        status = account.get("account_status")
        if status == "sealed":
            dispatcher.utter_message(response="utter_account_sealed")
        elif status and status != "normal":
            dispatcher.utter_message(response="utter_account_not_normal",
                                     account_status_name=account.get("account_status_name", status))
        logger.info("balance.shown status=%s months=%d", status, len(deposits))
        return []
