"""Reads a verified person's data from the core, with the answers every transaction shares:
not verified → start verification; verification lapsed → verify again; core down → say so."""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import core_client
from actions.verification import expired_events, is_expired, require_person, reset_events

logger = logging.getLogger(__name__)


async def get_for_person(tracker: Tracker, dispatcher: CollectingDispatcher, path: str, skill: str,
                         params: Optional[Dict[str, Any]] = None) -> Tuple[Optional[Any], List[EventType]]:
    """GET `path` (with `{person_ref}` filled in). Returns (body, []) on success, or
    (None, events) when the action must stop and return those events."""
    person_ref = require_person(tracker)
    if not person_ref:
        return None, reset_events()
    try:
        return await core_client.get(path.format(person_ref=person_ref), params=params), []
    except core_client.CoreUnavailable:
        dispatcher.utter_message(response="utter_core_unavailable")
        return None, []
    except core_client.CoreError as exc:
        if is_expired(exc):
            return None, expired_events(dispatcher)
        logger.warning("%s.refused status=%s code=%s", skill, exc.status, core_client.error_code(exc))
        dispatcher.utter_message(response="utter_core_unavailable")
        return None, []
