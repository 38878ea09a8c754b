"""Per-turn work of `rasa run` that this bot does not need (issue 20, bench/results/profile_rasa.txt).

Rasa validates every action server response against its full JSON schema of events (a `oneOf`
over every event type) with jsonschema: a large share of a turn's CPU under load. Our action
server is our own, reached only with its token (actions/server.py), and its responses are built
by rasa_sdk's event helpers; a structural check keeps the same failure (a ValidationError that
Rasa reports) for a response that is not a dict of event and response lists, and Rasa still
refuses an unknown event type when it parses the events right after.

Imported once by bot/gateway_channel.py, which `rasa run` loads at start from credentials.yml.
"""
from __future__ import annotations

from typing import Any, Dict, Text

from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction


def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    """What Rasa needs of the response to go on: lists of dicts, each event with a name."""
    if not isinstance(result, dict):
        raise ValidationError("the action server's response is not a JSON object")
    events, responses = result.get("events", []), result.get("responses", [])
    if not isinstance(events, list) or not all(isinstance(e, dict) and isinstance(e.get("event"), str)
                                               for e in events):
        raise ValidationError("the action server's events are not a list of events")
    if not isinstance(responses, list) or not all(isinstance(r, dict) for r in responses):
        raise ValidationError("the action server's responses are not a list of objects")
    return True


RemoteAction._validate_action_result = validate_action_result
