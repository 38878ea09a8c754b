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


def test_a_failing_tracker_store_fails_the_turn_instead_of_answering_from_memory():
    """bot/durable_turns.py: no FailSafeTrackerStore, so a redis error is not an empty conversation."""
    from rasa.core.agent import Agent
    from rasa.core.tracker_store import InMemoryTrackerStore
    from rasa.shared.core.domain import Domain

    store = InMemoryTrackerStore(Domain.empty())
    assert Agent._create_tracker_store(store, Domain.empty()) is store


def test_rasa_redis_stores_retry_a_command_once_on_a_fresh_connection():
    from rasa.core.lock_store import RedisLockStore
    from redis.exceptions import ConnectionError as RedisConnectionError

    kwargs = RedisLockStore(host="127.0.0.1", port=1).red.connection_pool.connection_kwargs
    assert kwargs["retry_on_error"] == [RedisConnectionError] and kwargs["retry"]._retries == 1


def test_a_turn_that_fails_midway_answers_nothing():
    """bot/gateway_channel.py: what the bot said before the failure is not sent as the reply."""
    import asyncio

    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    from bot.gateway_channel import whole_turn_or_nothing

    async def said_then_failed(message: UserMessage) -> None:
        await message.output_channel.send_text_message(message.sender_id, "您的余额是…")
        raise ConnectionError("tracker store down")

    async def said(message: UserMessage) -> None:
        await message.output_channel.send_text_message(message.sender_id, "您好")

    failed, kept = CollectingOutputChannel(), CollectingOutputChannel()
    with pytest.raises(ConnectionError):
        asyncio.run(whole_turn_or_nothing(said_then_failed)(UserMessage("查余额", failed, "s1")))
    asyncio.run(whole_turn_or_nothing(said)(UserMessage("你好", kept, "s2")))
    assert failed.messages == [] and [m["text"] for m in kept.messages] == ["您好"]
