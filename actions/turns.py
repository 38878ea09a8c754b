"""What the bot said in its turn just before the citizen's latest message: a bare "好的" answers
that turn's offer (a video call, an online application) and means nothing on its own."""
from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Tracker


def previous_bot_turn(tracker: Tracker) -> List[Dict[str, Any]]:
    """The bot events between the last two user messages (newest first)."""
    events: List[Dict[str, Any]] = []
    seen_latest_message = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_latest_message:
                break
            seen_latest_message = True
        elif event.get("event") == "bot" and seen_latest_message:
            events.append(event)
    return events
