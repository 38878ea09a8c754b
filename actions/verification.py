"""Identity verification: ID number + name + one-time code, or a bound WeChat openid.

A WeChat openid counts only as an identity assertion the gateway signed for this very
conversation (metadata `identity_assertion`, see bot/identity_assertion.py); a raw
`wechat_openid` in the metadata is ignored. ID numbers and names arrive as vault tokens
(bot/pii.py), which are passed to the core unchanged: the core resolves them.

`verification_form` asks for the slots; `validate_verification_form` talks to the core,
which checks the ID checksum, knows the registered phone, sends the code and locks a
person after repeated failures. Every refusal code maps to one response, so the citizen
always learns what to do next. A lockout or an unreachable core stops the form (the
validator returns no required slots) and the post-form rule resets it.

The transaction actions use `require_person` / `expired_events` from here: the core's
401 verification_expired (15 idle minutes) resets the verified state and the dialogue
starts this form again.
"""
from __future__ import annotations

import logging
import math
import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import core_client
from actions.settings import get_settings
from bot import identity_assertion, pii

logger = logging.getLogger(__name__)

FORM_NAME = "verification_form"
# Payloads for the gateway alone (gateway/conversation.py), never shown to the citizen: the next
# answer is a name (so the gateway tokenises it), and verification succeeded (it rotates the session).
EXPECTS_NAME = {"type": "expects", "slot": "person_name"}
IDENTITY_VERIFIED = {"type": "identity_verified"}
# The core's refusal codes for an ID number that can be fixed by typing it again.
ID_REFUSALS = {
    "invalid_id_format": "utter_invalid_id_format",
    "invalid_id_checksum": "utter_invalid_id_checksum",
    "token_expired": "utter_id_token_expired",
}
DIGIT_RUN = re.compile(r"[0-9Xx]{8,}")
OTP = re.compile(r"(?<![0-9])[0-9]{6}(?![0-9])")
OPENID_KIND = "wechat_openid"

# Slots the form collects, and what a successful verification sets.
FORM_SLOTS = ("id_number", "person_name", "otp_code", "challenge_id", "phone_masked")
PERSON_SLOTS = ("person_ref", "age", "elderly", "disabled")


def reset_events(keep_pending: bool = True) -> List[EventType]:
    """Forget the form's answers and the verified person (never keep a half-finished state)."""
    events: List[EventType] = [SlotSet(name, None) for name in FORM_SLOTS + PERSON_SLOTS]
    events += [SlotSet("verified", False), SlotSet("verification_stopped", None)]
    if not keep_pending:
        events += [SlotSet("pending_transaction", None), SlotSet("withdrawal_type", None)]
    return events


def identity_slots(identity: Dict[str, Any]) -> Dict[str, Any]:
    """Slot values after the core confirmed who this is; the form's answers are dropped."""
    slots: Dict[str, Any] = {name: None for name in FORM_SLOTS}
    slots.update(
        verified=True,
        verification_stopped=None,
        person_ref=identity["person_ref"],
        age=identity.get("age"),
        elderly=bool(identity.get("elderly")),
        disabled=bool(identity.get("disabled")),
    )
    return slots


def offer_video_if_needed(identity: Dict[str, Any], tracker: Tracker, dispatcher: CollectingDispatcher) -> Dict[str, Any]:
    """People aged 60+ or with the disability flag are offered a video session once, right
    after verification; the dialogue then goes on with what they asked for."""
    if tracker.get_slot("handoff_offered") or not (identity.get("elderly") or identity.get("disabled")):
        return {}
    dispatcher.utter_message(response="utter_handoff_offer")
    reason = "elderly" if identity.get("elderly") else "disabled"
    dispatcher.utter_message(json_message={"type": "handoff_offer", "reason": reason})
    return {"handoff_offered": True}


def require_person(tracker: Tracker) -> Optional[str]:
    """The verified person's reference, or None when the citizen must verify first."""
    if tracker.get_slot("verified") is not True:
        return None
    return tracker.get_slot("person_ref")


def is_expired(exc: core_client.CoreError) -> bool:
    return exc.status == 401 and core_client.error_code(exc) == "verification_expired"


def expired_events(dispatcher: CollectingDispatcher) -> List[EventType]:
    """The core forgot the verification (idle too long): say so and reset; rules re-verify."""
    dispatcher.utter_message(response="utter_verification_expired")
    logger.info("verification.expired")
    return reset_events()


def _latest_metadata(tracker: Tracker) -> Dict[str, Any]:
    metadata = (tracker.latest_message or {}).get("metadata")
    if metadata:
        return metadata
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event.get("metadata") or {}
    return {}


def asserted_openid(tracker: Tracker) -> Optional[str]:
    """The WeChat openid of this conversation, if the gateway signed it for this sender."""
    token = _latest_metadata(tracker).get("identity_assertion")
    if not token:
        return None
    key = get_settings().identity_assertion_key.encode()
    try:
        assertion = identity_assertion.decode(key, token, tracker.sender_id)
    except identity_assertion.InvalidAssertion as exc:
        logger.warning("verification.assertion.rejected reason=%s", exc.reason)
        return None
    if assertion.kind != OPENID_KIND:
        logger.warning("verification.assertion.rejected reason=wrong_kind")
        return None
    return assertion.value


def _id_number_in(text: str) -> Optional[str]:
    """The vault token or the 18-character ID number in an answer (the gateway normally
    leaves only the token; a clear number is normalised: ASCII digits, X upper case)."""
    token = pii.ID_TOKEN.search(text)
    if token:
        return token.group(0)
    return next((s.value for s in pii.find_pii(text) if s.kind == pii.ID and len(s.value) == 18), None)


def _value_before_this_turn(tracker: Tracker, slot: str) -> Any:
    """The slot's value before what the latest user message set."""
    past_latest_message = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            past_latest_message = True
        elif past_latest_message and event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


def _minutes(seconds: Any) -> Optional[int]:
    try:
        return max(1, math.ceil(float(seconds) / 60))
    except (TypeError, ValueError):
        return None


def _say_locked(dispatcher: CollectingDispatcher, retry_after_s: Any) -> Dict[str, Any]:
    minutes = _minutes(retry_after_s)
    if minutes is None:
        dispatcher.utter_message(response="utter_verification_locked_later")
    else:
        dispatcher.utter_message(response="utter_verification_locked", minutes=minutes)
    return {"verification_stopped": True}


def _say_unavailable(dispatcher: CollectingDispatcher) -> Dict[str, Any]:
    dispatcher.utter_message(response="utter_verification_unavailable")
    return {"verification_stopped": True}


async def _bind_openid(tracker: Tracker, person_ref: str) -> None:
    """In a WeChat conversation, ID + code once binds the openid, so the next visit needs neither.
    Best effort: an unbound WeChat user is simply asked for the ID again next time."""
    openid = asserted_openid(tracker)
    if not openid:
        return
    try:
        await core_client.post("/identity/openid/bind",
                               {"openid": openid, "person_ref": person_ref, "channel_ref": tracker.sender_id})
        logger.info("verification.openid.bound")
    except core_client.CoreError as exc:
        logger.warning("verification.openid.bind_refused code=%s", core_client.error_code(exc))
    except core_client.CoreUnavailable:
        logger.warning("verification.openid.bind_unavailable")


class ValidateVerificationForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_verification_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        # Rasa already lists the form as the active loop while it activates it; no slot has been
        # asked for yet then, and that is when a bound WeChat user is verified without typing.
        activating = (tracker.active_loop or {}).get("name") != FORM_NAME or not tracker.get_slot("requested_slot")
        if activating and tracker.get_slot("verified") is not True:
            openid = asserted_openid(tracker)
            if openid:
                events = await self._verify_openid(openid, dispatcher, tracker)
                if events:
                    return events
        return await super().run(dispatcher, tracker, domain)

    async def _verify_openid(self, openid: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
        """A bound WeChat user is verified without typing anything; otherwise the form asks."""
        try:
            identity = await core_client.post("/identity/openid", {"openid": openid})
        except core_client.CoreError as exc:
            logger.info("verification.openid.refused code=%s", core_client.error_code(exc))
            return []
        except core_client.CoreUnavailable:
            logger.warning("verification.openid.unavailable")
            return []
        dispatcher.utter_message(response="utter_verified_wechat", name_masked=identity.get("name_masked", ""))
        dispatcher.utter_message(json_message=IDENTITY_VERIFIED)
        logger.info("verification.succeeded via=openid")
        slots = {**identity_slots(identity), **offer_video_if_needed(identity, tracker, dispatcher)}
        return [SlotSet(k, v) for k, v in slots.items()] + [SlotSet("requested_slot", None)]

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> List[Text]:
        if tracker.get_slot("verified") is True or tracker.get_slot("verification_stopped"):
            return []
        return domain_slots

    async def validate_id_number(self, value: Any, dispatcher: CollectingDispatcher,
                                 tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        text = str(value or "")
        id_number = _id_number_in(text)
        if not id_number and pii.NAME_TOKEN.fullmatch(text.strip()):
            # The answer to the name question, taken for an ID by the entity model: not an ID
            # at all, so the ID given before stands and nothing is said about it.
            return {"id_number": _value_before_this_turn(tracker, "id_number")}
        if not id_number:
            run = max(DIGIT_RUN.findall(pii.to_ascii_digits(pii.TOKEN.sub(" ", text))), key=len, default="")
            if run:
                dispatcher.utter_message(response="utter_invalid_id_length", length=len(run))
            else:
                dispatcher.utter_message(response="utter_invalid_id_format")
            return {"id_number": None}
        name = tracker.get_slot("person_name")
        if not name:
            checked = await self._check_id_number(id_number, dispatcher)
            if checked.get("id_number"):
                dispatcher.utter_message(json_message=EXPECTS_NAME)  # the form asks for the name next
            return checked
        return await self._challenge(id_number, name, dispatcher, tracker)

    async def _check_id_number(self, id_number: str, dispatcher: CollectingDispatcher) -> Dict[Text, Any]:
        """Rasa sees only a vault token, so the core says at once whether the checksum is right.

        If the core cannot be reached the number is kept: the challenge checks it again later.
        """
        try:
            await core_client.post("/identity/id-numbers/check", {"id_number": id_number})
        except core_client.CoreUnavailable:
            logger.warning("verification.id_check.unavailable")
        except core_client.CoreError as exc:
            response = ID_REFUSALS.get(core_client.error_code(exc))
            if response is not None:
                dispatcher.utter_message(response=response)
                return {"id_number": None}
        return {"id_number": id_number}

    async def validate_person_name(self, value: Any, dispatcher: CollectingDispatcher,
                                   tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        name = pii.strip_name_cue(re.sub(r"[\s，,。.！!：:]", "", str(value or "")))
        if not (pii.NAME_TOKEN.fullmatch(name) or pii.NAME_ANSWER.match(name)):
            dispatcher.utter_message(response="utter_invalid_person_name")
            dispatcher.utter_message(json_message=EXPECTS_NAME)
            return {"person_name": None}
        id_number = tracker.get_slot("id_number")
        if not id_number:
            return {"person_name": name}
        return await self._challenge(id_number, name, dispatcher, tracker)

    async def _challenge(self, id_number: str, name: str, dispatcher: CollectingDispatcher,
                         tracker: Tracker) -> Dict[Text, Any]:
        """Asks the core to send a one-time code; both answers are known at this point."""
        try:
            challenge = await core_client.post(
                "/identity/challenges",
                {"id_number": id_number, "name": name, "channel_ref": tracker.sender_id},
            )
        except core_client.CoreUnavailable:
            logger.warning("verification.challenge.unavailable")
            return _say_unavailable(dispatcher)
        except core_client.CoreError as exc:
            code = core_client.error_code(exc)
            logger.info("verification.challenge.refused code=%s", code)
            if code == "locked":
                return _say_locked(dispatcher, core_client.error_field(exc, "retry_after_s"))
            if code == "person_not_found":
                dispatcher.utter_message(response="utter_person_not_found")
                return {"id_number": None, "person_name": None}
            response = ID_REFUSALS.get(code)
            if response is None:
                return _say_unavailable(dispatcher)
            dispatcher.utter_message(response=response)
            return {"id_number": None, "person_name": name}
        dispatcher.utter_message(
            response="utter_otp_sent",
            phone_masked=challenge["phone_masked"],
            minutes=_minutes(challenge.get("expires_in_s")) or 5,
        )
        logger.info("verification.challenge.sent")
        return {
            "id_number": id_number,
            "person_name": name,
            "challenge_id": challenge["challenge_id"],
            "phone_masked": challenge["phone_masked"],
        }

    async def validate_otp_code(self, value: Any, dispatcher: CollectingDispatcher,
                                tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        found = OTP.search(str(value or ""))
        if not found:
            dispatcher.utter_message(response="utter_invalid_otp_format")
            return {"otp_code": None}
        challenge_id = tracker.get_slot("challenge_id")
        if not challenge_id:  # the form was left half-way: start again from the ID number
            return {"otp_code": None, "id_number": None, "person_name": None}
        try:
            identity = await core_client.post(f"/identity/challenges/{challenge_id}/verify",
                                              {"code": found.group(0)})
        except core_client.CoreUnavailable:
            logger.warning("verification.verify.unavailable")
            return _say_unavailable(dispatcher)
        except core_client.CoreError as exc:
            return await self._code_refused(exc, dispatcher, tracker)
        dispatcher.utter_message(response="utter_verified", name_masked=identity.get("name_masked", ""))
        dispatcher.utter_message(json_message=IDENTITY_VERIFIED)
        logger.info("verification.succeeded via=otp elderly=%s", bool(identity.get("elderly")))
        await _bind_openid(tracker, identity["person_ref"])
        return {**identity_slots(identity), **offer_video_if_needed(identity, tracker, dispatcher)}

    async def _code_refused(self, exc: core_client.CoreError, dispatcher: CollectingDispatcher,
                            tracker: Tracker) -> Dict[Text, Any]:
        code = core_client.error_code(exc)
        logger.info("verification.verify.refused code=%s", code)
        if code == "wrong_code":
            attempts_left = core_client.error_field(exc, "attempts_left")
            if attempts_left == 0:
                return _say_locked(dispatcher, core_client.error_field(exc, "retry_after_s"))
            if attempts_left is None:
                dispatcher.utter_message(response="utter_wrong_otp_retry")
            else:
                dispatcher.utter_message(response="utter_wrong_otp", attempts_left=attempts_left)
            return {"otp_code": None}
        if code == "locked":
            return _say_locked(dispatcher, core_client.error_field(exc, "retry_after_s"))
        if code == "challenge_expired":
            dispatcher.utter_message(response="utter_otp_expired")
            return await self._challenge(tracker.get_slot("id_number"), tracker.get_slot("person_name"),
                                         dispatcher, tracker) | {"otp_code": None}
        return _say_unavailable(dispatcher)


class ActionResetVerification(Action):
    """Runs after the form was cancelled or stopped: nothing half-entered survives."""

    def name(self) -> Text:
        return "action_reset_verification"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        return reset_events(keep_pending=False)
