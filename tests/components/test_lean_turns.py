"""The lighter check of action server responses (bot/lean_turns.py) still refuses what Rasa cannot use."""
from __future__ import annotations

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

import bot.gateway_channel  # noqa: F401 - installs the check, as `rasa run` does

ACTION = RemoteAction("action_faq", None)


def test_the_check_is_installed_with_the_gateway_channel():
    assert RemoteAction._validate_action_result.__module__ == "bot.lean_turns"


def test_a_response_of_rasa_sdk_events_passes():
    response = {"events": [{"event": "slot", "name": "verified", "value": True, "timestamp": None},
                           {"event": "followup", "name": "action_listen"}],
                "responses": [{"text": "您好", "buttons": []}]}
    assert ACTION._validate_action_result(response)
    assert ACTION._validate_action_result({})


@pytest.mark.parametrize("response", [
    [],
    {"events": {"event": "slot"}},
    {"events": [{"name": "verified"}]},
    {"events": ["slot"]},
    {"responses": "您好"},
    {"responses": ["您好"]},
])
def test_a_malformed_response_is_refused_as_rasa_refuses_it(response):
    with pytest.raises(ValidationError):
        ACTION._validate_action_result(response)
