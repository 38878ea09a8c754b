"""Online withdrawal application (全程网办): offer → amount → signing code → submitted.

The pre-check (actions/withdrawal.py) offers to apply when a kind is possible online.
`application_form` then runs in three turns, every business rule staying in the core:
1. on activation the core's offer is shown (largest amount, masked bank card, materials
   fetched from shared data, what must be uploaded) and the amount is asked;
2. the amount (numerals, Chinese numerals or "全部") is checked against the maximum, the
   declaration is shown and the core sends a one-time signing code bound to kind and amount;
3. the code signs and submits in one core call, with an idempotency key derived from the
   challenge, so a retried confirmation never makes a second application.
What must still be uploaded is handed to the channel as a `custom.upload` payload (the web
widget shows file pickers; the hotline points to the mini-program or widget).
A refusal says why and what to do next; the core writes nothing for a refused step.
"""
from __future__ import annotations

import hashlib
import logging
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import core_client
from actions.balance import yuan
from actions.turns import previous_bot_turn
from actions.verification import OTP, expired_events, is_expired, require_person
from bot.components.numerals import parse_amount

logger = logging.getLogger(__name__)

FORM_NAME = "application_form"
FORM_SLOTS = ("application_amount", "application_code", "application_kind", "application_max",
              "application_challenge", "application_phone", "application_stopped")
KIND_NAMES = {"rent": "租房提取", "purchase": "购房提取", "retirement": "退休提取", "leave_job": "离职提取",
              "renovation": "装修提取", "property_fee": "物业费提取", "illness": "大病医疗提取",
              "loan_repayment": "偿还贷款提取", "other": "其他住房消费提取"}
STATUS_NAMES = {"submitted": "已提交", "under_review": "审核中", "approved": "已审批", "paid": "已到账",
                "rejected": "未通过", "cancelled": "已撤销"}
ALL_WORDS = ("全部", "全额", "最高", "最多", "都取", "全取", "上限")
# An amount somewhere in the reply: digits (with separators and decimals) or Chinese numerals, an
# optional 万/千 and 元.
AMOUNT_SPAN = re.compile(r"([0-9][0-9,，]*(?:\.[0-9]+)?|[零〇一二两三四五六七八九十百千万壹贰叁肆伍陆柒捌玖拾佰仟]+)"
                         r"\s*(万|千|w|k)?([零〇一二两三四五六七八九0-9]?)\s*(?:元|块)?", re.IGNORECASE)


def chosen_kind(tracker: Tracker) -> Optional[str]:
    """The kind being applied for: named now, or the one the last pre-check offered."""
    for kind in (tracker.get_slot("application_kind"), tracker.get_slot("application_offered")):
        if kind in KIND_NAMES:
            return kind
    return None


def parse_requested_amount(text: str, maximum: Decimal) -> Optional[Decimal]:
    """"全部" → the maximum; "3000" / "三千元" / "1.2万" → that amount; None when no amount is found."""
    text = (text or "").strip()
    if any(word in text for word in ALL_WORDS):
        return maximum
    for match in AMOUNT_SPAN.finditer(text):
        span = match.group(0).replace("，", "").replace(",", "")
        value = parse_amount(span)
        if value is not None:
            try:
                return Decimal(str(value))
            except InvalidOperation:
                return None
    return None


def idempotency_key(sender_id: str, challenge_id: str) -> str:
    """One key per signing challenge of one conversation: a retried confirmation sends the same key."""
    return "chat-" + hashlib.sha256(f"{sender_id}|{challenge_id}".encode()).hexdigest()[:40]


def upload_payload(application_id: str, grant: Dict[str, Any]) -> Dict[str, Any]:
    return {"upload": {"application_id": application_id, "token": grant["token"],
                       "items": grant.get("items") or [], "expires_in_s": grant.get("expires_in_s")}}


async def open_kinds(person_ref: str) -> List[str]:
    """Kinds with an application still being handled: one at a time per kind, so none is offered."""
    try:
        listing = await core_client.get(f"/persons/{person_ref}/applications")
    except (core_client.CoreUnavailable, core_client.CoreError):
        return []  # the offer's own check at the core refuses a second one anyway
    return [a.get("kind") for a in listing.get("applications") or []
            if a.get("status") not in ("paid", "rejected", "cancelled")]


def say_offer(dispatcher: CollectingDispatcher, eligible: List[Dict[str, Any]], busy: List[str]) -> Optional[str]:
    """After a pre-check: offers to apply online for each kind that has an amount and no application
    in progress (those are pointed to 查进度). Returns the kind offered when there is exactly one
    (a bare "好的" then applies for it)."""
    kinds = [r for r in eligible if r.get("max_amount") is not None and r.get("kind") in KIND_NAMES]
    for result in [r for r in kinds if r["kind"] in busy]:
        dispatcher.utter_message(response="utter_application_open", kind_name=KIND_NAMES[result["kind"]])
    kinds = [r for r in kinds if r["kind"] not in busy]
    if not kinds:
        return None
    buttons = [{"title": f"在线申请{KIND_NAMES[r['kind']]}", "payload": f'/apply_withdrawal{{"withdrawal_type": "{r["kind"]}"}}'}
               for r in kinds[:3]]
    buttons.append({"title": "暂不申请", "payload": "/cancel_request"})
    if len(kinds) == 1:
        dispatcher.utter_message(response="utter_application_offer", kind_name=KIND_NAMES[kinds[0]["kind"]],
                                 buttons=buttons)
        return kinds[0]["kind"]
    dispatcher.utter_message(response="utter_application_offer_many", buttons=buttons)
    return None


def offered_application_last_turn(tracker: Tracker) -> Optional[str]:
    """The kind offered in the bot's turn just before the citizen's latest message, if any."""
    if any((event.get("metadata") or {}).get("utter_action") == "utter_application_offer"
           for event in previous_bot_turn(tracker)):
        return tracker.get_slot("application_offered")
    return None


def _stop(**slots: Any) -> Dict[Text, Any]:
    return {"application_stopped": True, "requested_slot": None, **slots}


class ValidateApplicationForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_application_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        # On activation nothing has been asked yet: fetch and show the offer first.
        activating = (tracker.active_loop or {}).get("name") != FORM_NAME or not tracker.get_slot("requested_slot")
        if activating and not tracker.get_slot("application_max") and not tracker.get_slot("application_stopped"):
            events = [SlotSet(k, v) for k, v in (await self._offer(dispatcher, tracker)).items()]
            tracker.add_slots(events)
            return events + await super().run(dispatcher, tracker, domain)
        return await super().run(dispatcher, tracker, domain)

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> List[Text]:
        if tracker.get_slot("application_stopped"):
            return []
        return domain_slots

    async def _offer(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[Text, Any]:
        person_ref = require_person(tracker)
        kind = chosen_kind(tracker)
        if not person_ref:
            return _stop()
        if kind is None:
            return await self._ask_kind(dispatcher, tracker, person_ref)
        try:
            offer = await core_client.get(f"/persons/{person_ref}/applications/offer", params={"kind": kind})
        except core_client.CoreUnavailable:
            dispatcher.utter_message(response="utter_core_unavailable")
            return _stop()
        except core_client.CoreError as exc:
            return self._refused(exc, dispatcher, kind)
        to_upload = (offer.get("materials") or {}).get("to_upload") or []
        upload_notice = ("需要上传：" + "、".join(to_upload) + "（提交后在线上传）") if to_upload else "无需上传任何材料（免提交）。"
        dispatcher.utter_message(response="utter_application_details", kind_name=offer.get("kind_name", KIND_NAMES[kind]),
                                 max_amount=yuan(offer["max_amount"]), card_masked=offer.get("card_masked", ""),
                                 bank_name=offer.get("bank_name", ""), fetched_notice=offer.get("fetched_notice", ""),
                                 upload_notice=upload_notice)
        maximum = Decimal(str(offer["max_amount"])).quantize(Decimal("0.01"))
        return {"application_kind": kind, "application_max": str(maximum)}

    async def _ask_kind(self, dispatcher: CollectingDispatcher, tracker: Tracker, person_ref: str) -> Dict[Text, Any]:
        try:
            check = await core_client.get(f"/persons/{person_ref}/withdrawal-check", params={"kind": "all"})
        except core_client.CoreUnavailable:
            dispatcher.utter_message(response="utter_core_unavailable")
            return _stop()
        except core_client.CoreError as exc:
            if is_expired(exc):
                return {e["name"]: e["value"] for e in expired_events(dispatcher) if e.get("event") == "slot"} | _stop()
            dispatcher.utter_message(response="utter_core_unavailable")
            return _stop()
        eligible = [r for r in check.get("results") or [] if r.get("eligible")]
        kinds = [r for r in eligible if r.get("max_amount") is not None and r.get("kind") in KIND_NAMES]
        if not kinds:
            dispatcher.utter_message(response="utter_application_nothing_eligible")
            return _stop()
        buttons = [{"title": f"{KIND_NAMES[r['kind']]}（最多 {yuan(r['max_amount'])} 元）",
                    "payload": f'/apply_withdrawal{{"withdrawal_type": "{r["kind"]}"}}'} for r in kinds[:4]]
        dispatcher.utter_message(response="utter_application_which_kind", buttons=buttons)
        return _stop()

    def _refused(self, exc: core_client.CoreError, dispatcher: CollectingDispatcher, kind: str) -> Dict[Text, Any]:
        code = core_client.error_code(exc)
        logger.info("application.refused code=%s kind=%s", code, kind)
        name = KIND_NAMES.get(kind, "提取")
        if is_expired(exc):
            slots = {e["name"]: e["value"] for e in expired_events(dispatcher) if e.get("event") == "slot"}
            return {**slots, **_stop()}
        if code == "not_eligible":
            reasons = core_client.error_field(exc, "reasons") or []
            dispatcher.utter_message(response="utter_application_not_eligible", kind_name=name,
                                     reasons="；".join(reasons) or "条件已变化")
        elif code == "amount_unavailable":
            dispatcher.utter_message(response="utter_application_not_online", kind_name=name)
        elif code == "application_open":
            dispatcher.utter_message(response="utter_application_open", kind_name=name)
        elif code == "no_bank_card":
            dispatcher.utter_message(response="utter_application_no_card")
        else:
            dispatcher.utter_message(response="utter_application_unavailable")
        return _stop()

    async def validate_application_amount(self, value: Any, dispatcher: CollectingDispatcher,
                                          tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        maximum = Decimal(tracker.get_slot("application_max") or "0")
        amount = parse_requested_amount(str(value or ""), maximum)
        if amount is None:
            dispatcher.utter_message(response="utter_application_amount_unclear")
            return {"application_amount": None}
        if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
            dispatcher.utter_message(response="utter_application_amount_invalid")
            return {"application_amount": None}
        if amount > maximum:
            dispatcher.utter_message(response="utter_application_amount_over_max", max_amount=yuan(maximum))
            return {"application_amount": None}
        return await self._send_code(dispatcher, tracker, amount)

    async def _send_code(self, dispatcher: CollectingDispatcher, tracker: Tracker, amount: Decimal,
                         again: bool = False) -> Dict[Text, Any]:
        person_ref = require_person(tracker)
        kind = tracker.get_slot("application_kind")
        try:
            started = await core_client.post("/applications/sign-challenges",
                                             {"person_ref": person_ref, "kind": kind, "amount": str(amount)})
            offer = await core_client.get(f"/persons/{person_ref}/applications/offer", params={"kind": kind})
        except core_client.CoreUnavailable:
            dispatcher.utter_message(response="utter_application_unavailable")
            return _stop(application_amount=None)
        except core_client.CoreError as exc:
            code = core_client.error_code(exc)
            if code == "amount_over_max":
                dispatcher.utter_message(response="utter_application_amount_over_max",
                                         max_amount=yuan(core_client.error_field(exc, "max_amount") or 0))
                return {"application_amount": None}
            if code == "insufficient_balance":
                dispatcher.utter_message(response="utter_application_insufficient_balance",
                                         available=yuan(core_client.error_field(exc, "available") or 0))
                return {"application_amount": None}
            if code == "locked":
                dispatcher.utter_message(response="utter_verification_locked_later")
                return _stop(application_amount=None)
            return {**self._refused(exc, dispatcher, kind), "application_amount": None}
        if again:
            dispatcher.utter_message(response="utter_application_code_expired")
        else:
            declaration = offer.get("declaration") or {}
            dispatcher.utter_message(response="utter_application_declaration", title=declaration.get("title", ""),
                                     declaration_text=declaration.get("text", ""))
        dispatcher.utter_message(response="utter_application_code_sent", kind_name=offer.get("kind_name", ""),
                                 amount=yuan(amount), bank_name=offer.get("bank_name", ""),
                                 card_masked=offer.get("card_masked", ""), phone_masked=started.get("phone_masked", ""),
                                 minutes=max(1, math.ceil((started.get("expires_in_s") or 300) / 60)))
        return {"application_amount": str(amount), "application_challenge": started["challenge_id"],
                "application_phone": started.get("phone_masked")}

    async def validate_application_code(self, value: Any, dispatcher: CollectingDispatcher,
                                        tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        found = OTP.search(str(value or ""))
        if not found:
            dispatcher.utter_message(response="utter_invalid_otp_format")
            return {"application_code": None}
        challenge_id = tracker.get_slot("application_challenge")
        amount = tracker.get_slot("application_amount")
        kind = tracker.get_slot("application_kind")
        person_ref = require_person(tracker)
        if not (challenge_id and amount and kind and person_ref):
            return {"application_code": None, "application_amount": None}
        body = {"person_ref": person_ref, "kind": kind, "amount": amount, "challenge_id": challenge_id,
                "code": found.group(0), "idempotency_key": idempotency_key(tracker.sender_id, challenge_id)}
        try:
            result = await core_client.post("/applications", body)
        except core_client.CoreUnavailable:
            dispatcher.utter_message(response="utter_application_unavailable")
            return _stop(application_code=None)
        except core_client.CoreError as exc:
            return await self._code_refused(exc, dispatcher, tracker, Decimal(amount))
        await self._say_submitted(dispatcher, tracker, result)
        return {"application_code": "signed"}

    async def _code_refused(self, exc: core_client.CoreError, dispatcher: CollectingDispatcher,
                            tracker: Tracker, amount: Decimal) -> Dict[Text, Any]:
        code = core_client.error_code(exc)
        logger.info("application.submit.refused code=%s", code)
        if code == "wrong_code":
            attempts_left = core_client.error_field(exc, "attempts_left")
            if attempts_left == 0:
                dispatcher.utter_message(response="utter_verification_locked_later")
                return _stop(application_code=None)
            if attempts_left is None:
                dispatcher.utter_message(response="utter_wrong_otp_retry")
            else:
                dispatcher.utter_message(response="utter_wrong_otp", attempts_left=attempts_left)
            return {"application_code": None}
        if code in ("challenge_expired", "sign_mismatch"):
            if code == "sign_mismatch":
                dispatcher.utter_message(response="utter_application_code_mismatch")
            return {**await self._send_code(dispatcher, tracker, amount, again=code == "challenge_expired"),
                    "application_code": None}
        if code == "locked":
            dispatcher.utter_message(response="utter_verification_locked_later")
            return _stop(application_code=None)
        if code in ("amount_over_max", "insufficient_balance"):
            return await self._send_code(dispatcher, tracker, amount) | {"application_code": None}
        return {**self._refused(exc, dispatcher, tracker.get_slot("application_kind") or ""), "application_code": None}

    async def _say_submitted(self, dispatcher: CollectingDispatcher, tracker: Tracker, result: Dict[str, Any]) -> None:
        number = result["id"]
        if result.get("duplicate"):
            dispatcher.utter_message(response="utter_application_duplicate", number=number)
        signature = result.get("signature") or {}
        dispatcher.utter_message(response="utter_application_submitted", number=number,
                                 kind_name=result.get("kind_name", ""), amount=yuan(result.get("amount")),
                                 status_name=result.get("status_name", ""),
                                 sha_short=(signature.get("sha256") or "")[:12])
        to_upload = (result.get("materials") or {}).get("to_upload") or []
        if not to_upload:
            dispatcher.utter_message(response="utter_application_submitted_complete",
                                     bank_name=signature.get("bank_name", ""), card_masked=signature.get("card_masked", ""))
            return
        items = "、".join(to_upload)
        if tracker.sender_id.startswith("voice-"):
            dispatcher.utter_message(response="utter_application_upload_elsewhere", items=items)
            return
        dispatcher.utter_message(response="utter_application_upload_needed", items=items)
        try:
            grant = await core_client.post(f"/applications/{number}/upload-token",
                                           {"person_ref": require_person(tracker)})
        except (core_client.CoreUnavailable, core_client.CoreError) as exc:
            logger.warning("application.upload_token.failed error=%s", type(exc).__name__)
            dispatcher.utter_message(response="utter_application_upload_elsewhere", items=items)
            return
        dispatcher.utter_message(json_message=upload_payload(number, grant))


class ActionApplicationDone(Action):
    """Runs when the form ends (submitted, stopped or cancelled): nothing half-entered survives,
    so a later "在线申请" starts from a fresh offer."""

    def name(self) -> Text:
        return "action_application_done"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        if tracker.get_slot("application_stopped") and tracker.get_slot("verified") is not True:
            dispatcher.utter_message(response="utter_application_reverify")
        events: List[EventType] = [SlotSet(name, None) for name in FORM_SLOTS]
        events.append(SlotSet("application_offered", None))
        if tracker.get_slot("pending_transaction") == "apply_withdrawal":
            events.append(SlotSet("pending_transaction", None))
        return events


class ActionCancelApplication(Action):
    """Withdraws the citizen's own online application while it is still 已提交 (before review).
    Which one: the button's `application_id`, else the newest cancellable one from the core."""

    def name(self) -> Text:
        return "action_cancel_application"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        person_ref = require_person(tracker)
        if not person_ref:
            return [SlotSet("pending_transaction", None)]
        number = str(next(tracker.get_latest_entity_values("application_id"), "") or "").upper() or None  # arrives lower-cased
        try:
            if not number:
                listing = await core_client.get(f"/persons/{person_ref}/applications")
                number = next((a["id"] for a in listing.get("applications") or []
                               if a.get("online") and a.get("status") == "submitted"), None)
            if not number:
                dispatcher.utter_message(response="utter_application_cancel_which")
                return [SlotSet("pending_transaction", None)]
            await core_client.post(f"/applications/{number}/cancel", {"person_ref": person_ref})
        except core_client.CoreUnavailable:
            dispatcher.utter_message(response="utter_core_unavailable")
            return [SlotSet("pending_transaction", None)]
        except core_client.CoreError as exc:
            if is_expired(exc):
                return expired_events(dispatcher)
            code = core_client.error_code(exc)
            logger.info("application.cancel.refused code=%s", code)
            if code == "not_cancellable":
                status = core_client.error_field(exc, "current_status") or ""
                dispatcher.utter_message(response="utter_application_cancel_refused", number=number,
                                         status_name=STATUS_NAMES.get(status, status))
            else:
                dispatcher.utter_message(response="utter_application_cancel_which")
            return [SlotSet("pending_transaction", None)]
        dispatcher.utter_message(response="utter_application_cancel_done", number=number)
        logger.info("application.cancelled")
        return [SlotSet("pending_transaction", None)]
