"""Rasa's gateway channel (bot/gateway_channel.py): the REST webhook answers the gateway alone."""
from __future__ import annotations

import asyncio
from typing import Any, List

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from rasa.core.run import _create_single_channel
from rasa.shared.utils.io import read_config_file
from sanic import Sanic
from sanic.response import json as json_response

from bot.gateway_channel import TOKEN_HEADER, GatewayInput

from tests.actions.serving import serving

TOKEN = "test-gateway-token"


def test_credentials_yml_loads_the_gateway_channel_by_module_path(monkeypatch):
    monkeypatch.setenv("RASA_GATEWAY_TOKEN", TOKEN)
    [(name, credentials)] = read_config_file("bot/credentials.yml").items()
    channel = _create_single_channel(name, credentials)  # what `rasa run --credentials` does
    assert isinstance(channel, GatewayInput) and channel.url_prefix() == "gateway"


@pytest.mark.parametrize("headers, status", [({}, 401), ({TOKEN_HEADER: "wrong"}, 401),
                                             ({TOKEN_HEADER: TOKEN}, 200)])
def test_webhook_needs_the_gateway_token(monkeypatch, headers, status):
    monkeypatch.setattr(Sanic, "test_mode", True)
    received: List[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        received.append(message)
        await message.output_channel.send_text_message(message.sender_id, "你好")

    app = Sanic("gateway_channel_test")
    channel = GatewayInput(TOKEN)  # mounted as rasa.core.channels.channel.register does, minus the agent
    app.blueprint(channel.blueprint(on_new_message), url_prefix="/webhooks/" + channel.url_prefix())
    app.add_route(lambda request: json_response({"status": "ok"}), "/status")  # a route of Rasa's own API

    async def go() -> Any:
        async with serving(app) as base, aiohttp.ClientSession() as http:
            async with http.get(base + "/status") as other:
                assert other.status == 200  # the token check is the channel's only
            async with http.post(base + "/webhooks/gateway/webhook", headers=headers,
                                 json={"sender": "web-1", "message": "hi", "metadata": {"elder_mode": True}}) as resp:
                return resp.status, await resp.json()

    got_status, body = asyncio.run(go())
    assert got_status == status
    if status == 200:
        assert body == [{"recipient_id": "web-1", "text": "你好"}]
        assert received[0].input_channel == "gateway" and received[0].metadata == {"elder_mode": True}
    else:
        assert received == [] and body["error"] == "unauthorized"


def test_without_a_configured_token_nothing_gets_in(monkeypatch):
    monkeypatch.delenv("RASA_GATEWAY_TOKEN", raising=False)
    channel = GatewayInput()
    assert asyncio.run(channel._require_token(_FakeRequest({TOKEN_HEADER: ""}))).status == 401


class _FakeRequest:
    def __init__(self, headers):
        self.headers = headers
