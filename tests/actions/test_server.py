"""The action server (actions/server.py): closed without the token, open /health, one deadline."""
from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Text

import aiohttp
import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from sanic import Sanic

from actions.server import TIMEOUT_TEXT, TOKEN_HEADER, create_app
from actions.settings import ActionSettings, SettingsError

from tests.actions.serving import serving

TOKEN = "test-action-token"
ENDPOINTS = Path(__file__).resolve().parents[2] / "bot" / "endpoints.yml"


class ActionTestSlow(Action):
    """Registered with every action of the package (rasa_sdk registers all Action subclasses)."""

    def name(self) -> Text:
        return "action_test_slow"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        await asyncio.sleep(30)
        return []


class ActionTestQuick(Action):
    def name(self) -> Text:
        return "action_test_quick"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text="ok")
        return []


def settings(**overrides: Any) -> ActionSettings:
    values = dict(core_url="http://127.0.0.1:1", core_api_token="", core_timeout_s=1.0, anju_env="test",
                  action_server_token=TOKEN, action_deadline_s=0.5)
    return ActionSettings(**{**values, **overrides})


@pytest.fixture(autouse=True)
def sanic_test_mode(monkeypatch):
    monkeypatch.setattr(Sanic, "test_mode", True)  # rasa_sdk names every app "rasa_sdk"


def action_call(name: str, events: List[Dict[str, Any]] = ()) -> Dict[str, Any]:
    return {"next_action": name, "sender_id": "web-1", "version": "3.6.2", "domain": {},
            "tracker": {"sender_id": "web-1", "slots": {}, "latest_message": {}, "events": list(events),
                        "paused": False, "followup_action": None, "active_loop": {},
                        "latest_action_name": "action_listen"}}


def call(app: Sanic, requests: List[Dict[str, Any]]) -> List[Any]:
    """Sends each request ({method, path, headers, json}) to the started app: [(status, body, seconds)]."""
    async def go() -> List[Any]:
        results = []
        async with serving(app) as base, aiohttp.ClientSession() as http:
            for r in requests:
                started = time.monotonic()
                async with http.request(r.get("method", "GET"), base + r["path"], headers=r.get("headers"),
                                        json=r.get("json")) as resp:
                    results.append((resp.status, await resp.json(content_type=None), time.monotonic() - started))
        return results

    return asyncio.run(go())


def test_without_the_token_webhook_and_actions_answer_401_and_health_stays_open():
    app = create_app(settings())
    results = call(app, [
        {"path": "/health"},
        {"path": "/actions"},
        {"path": "/actions", "headers": {TOKEN_HEADER: "wrong"}},
        {"method": "POST", "path": "/webhook", "json": action_call("action_test_quick")},
        {"method": "POST", "path": "/webhook", "headers": {TOKEN_HEADER: TOKEN + "x"},
         "json": action_call("action_test_quick")},
    ])
    assert [status for status, _, _ in results] == [200, 401, 401, 401, 401]
    assert results[1][1]["error"] == "unauthorized"


def test_with_the_token_actions_run():
    app = create_app(settings())
    (listed, names, _), (status, body, _) = call(app, [
        {"path": "/actions", "headers": {TOKEN_HEADER: TOKEN}},
        {"method": "POST", "path": "/webhook", "headers": {TOKEN_HEADER: TOKEN},
         "json": action_call("action_test_quick")},
    ])
    assert listed == 200 and {"name": "validate_verification_form"} in names
    assert status == 200 and body["responses"][0]["text"] == "ok"


def test_a_slow_action_is_cut_at_the_deadline_with_one_clear_message():
    app = create_app(settings(action_deadline_s=0.5))
    [(status, body, seconds)] = call(app, [
        {"method": "POST", "path": "/webhook", "headers": {TOKEN_HEADER: TOKEN},
         "json": action_call("action_test_slow")},
    ])
    assert status == 200 and seconds < 3
    assert body == {"events": [], "responses": [{"text": TIMEOUT_TEXT}]}


def test_a_slow_form_validator_resets_the_unchecked_answers():
    from actions.server import timeout_result

    events = [{"event": "user", "text": "pii_id_3f9a0c1d2e4b5a6f"},
              {"event": "slot", "name": "id_number", "value": "pii_id_3f9a0c1d2e4b5a6f"},
              {"event": "slot", "name": "requested_slot", "value": "id_number"},
              {"event": "action", "name": "verification_form"},
              {"event": "slot", "name": "id_number", "value": "pii_id_3f9a0c1d2e4b5a6f"}]
    result = timeout_result(action_call("validate_verification_form", events))
    assert result["events"] == [{"event": "slot", "name": "id_number", "value": None, "timestamp": None}]
    assert result["responses"] == [{"text": TIMEOUT_TEXT}]


def test_rasa_sends_the_token_from_bot_endpoints_yml(monkeypatch):
    """Rasa 3.6 expands ${VAR} in nested headers and sends them with every action call."""
    from rasa.utils.endpoints import read_endpoint_config

    app = create_app(settings())

    async def go() -> Any:
        async with serving(app) as base:
            monkeypatch.setenv("ACTION_ENDPOINT_URL", base + "/webhook")
            monkeypatch.setenv("ACTION_SERVER_TOKEN", TOKEN)
            for name in set(re.findall(r"\$\{(\w+)\}", ENDPOINTS.read_text())) - {"ACTION_ENDPOINT_URL",
                                                                                   "ACTION_SERVER_TOKEN"}:
                monkeypatch.setenv(name, "0")  # the file's other endpoints (redis): not used here
            endpoint = read_endpoint_config(str(ENDPOINTS), "action_endpoint")
            assert endpoint.headers == {TOKEN_HEADER: TOKEN}
            return await endpoint.request(json=action_call("action_test_quick"), method="post")

    body = asyncio.run(go())
    assert body["responses"][0]["text"] == "ok"


@pytest.mark.parametrize("token, key", [("", "a-real-key"), ("dev-action-server-token", "a-real-key"),
                                        ("a-real-token", ""), ("a-real-token", "dev-identity-assertion-key")])
def test_production_refuses_placeholder_secrets(token, key):
    with pytest.raises(SettingsError, match="production"):
        create_app(settings(anju_env="production", action_server_token=token, identity_assertion_key=key))


def test_an_unknown_environment_is_refused():
    with pytest.raises(SettingsError, match="ANJU_ENV"):
        create_app(settings(anju_env="staging"))
