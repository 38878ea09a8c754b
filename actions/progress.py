"""Application progress: each application's timeline, current step and expected date.

Online withdrawal applications also carry the amount applied for, a note per step (e.g. the
sandbox's automatic approval) and, when rejected, the reviewer's reason.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import core_client
from actions.application import upload_payload
from actions.balance import yuan
from actions.person_data import get_for_person

logger = logging.getLogger(__name__)

DONE, CURRENT, LATER, REFUSED = "✅", "⏳", "○", "❌"


def timeline(application: Dict[str, Any]) -> str:
    """The number and amount (online applications), then one line per step: done with its date (and
    note), the current one, the ones still to come; a rejection ends with its reason."""
    lines = []
    if application.get("online") and application.get("id"):
        lines.append(f"申请编号：{application['id']}")
    if application.get("amount") is not None:
        lines.append(f"申请金额：{yuan(application['amount'])} 元")
    reason = application.get("reason")
    for step in application.get("steps") or []:
        if step.get("done_at"):
            mark = REFUSED if step.get("status") == "rejected" else DONE
            note = step.get("note")
            shown = f"（{note}）" if note and note != reason else ""
            lines.append(f"{mark} {step['name']}  {step['done_at']}{shown}")
        elif step.get("name") == application.get("current_step"):
            lines.append(f"{CURRENT} {step['name']}")
        else:
            lines.append(f"{LATER} {step['name']}")
    if reason:
        lines.append(f"未通过原因：{reason}")
    return "\n".join(lines)


async def offer_uploads(dispatcher: CollectingDispatcher, tracker: Tracker, applications: List[Dict[str, Any]]) -> None:
    """An open online application still missing materials gets a fresh upload link (the widget and the
    mini-program draw file pickers): a citizen who closed the page or let the link expire goes on here."""
    if tracker.sender_id.startswith("voice-"):
        return
    for app in applications:
        if not app.get("online") or app.get("status") not in ("submitted", "under_review"):
            continue
        try:
            grant = await core_client.post(f"/applications/{app['id']}/upload-token",
                                           {"person_ref": tracker.get_slot("person_ref")})
        except (core_client.CoreUnavailable, core_client.CoreError):
            continue  # nothing to upload (409) or the core is busy: the progress itself was shown
        if grant.get("items"):
            dispatcher.utter_message(json_message=upload_payload(app["id"], grant))


class ActionCheckProgress(Action):
    def name(self) -> Text:
        return "action_check_progress"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        body, stop = await get_for_person(tracker, dispatcher, "/persons/{person_ref}/applications", "progress")
        if body is None:
            return stop

        applications = body.get("applications") or []
        if not applications:
            dispatcher.utter_message(response="utter_no_applications")
        for app in applications:
            fields = dict(kind_name=app.get("kind_name", ""), submitted_at=app.get("submitted_at", ""),
                          status_name=app.get("status_name", ""), timeline=timeline(app))
            if app.get("expected_done") and app.get("current_step"):
                dispatcher.utter_message(response="utter_application_in_progress",
                                         current_step=app["current_step"],
                                         expected_done=app["expected_done"], **fields)
            else:
                dispatcher.utter_message(response="utter_application_finished", **fields)
        await offer_uploads(dispatcher, tracker, applications)
        cancellable = [a for a in applications if a.get("online") and a.get("status") == "submitted"]
        if cancellable:
            dispatcher.utter_message(response="utter_application_can_cancel", buttons=[
                {"title": f"撤销申请 {a['id']}", "payload": f'/cancel_application{{"application_id": "{a["id"]}"}}'}
                for a in cancellable[:3]])
        logger.info("progress.shown applications=%d", len(applications))
        return []
