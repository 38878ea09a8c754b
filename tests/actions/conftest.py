"""Action tests (Rasa venv): a scripted fake core in place of actions.core_client's HTTP,
and replies rendered from the real domain responses, so tests read what a citizen reads.

Run: PYTHONPATH=. <rasa venv>/bin/python -m pytest tests/actions -q -p no:cacheprovider -c /dev/null
"""
from __future__ import annotations

import asyncio
import string
from collections import ChainMap
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import core_client

ROOT = Path(__file__).resolve().parents[2]


def load_domain() -> Dict[str, Any]:
    """bot/domain/*.yml merged the way the SDK receives it (slots, forms, responses, actions)."""
    merged: Dict[str, Any] = {"slots": {}, "forms": {}, "responses": {}, "actions": [], "intents": []}
    for path in sorted((ROOT / "bot" / "domain").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in ("slots", "forms", "responses"):
            merged[key].update(data.get(key) or {})
        for key in ("actions", "intents"):
            merged[key] += [a if isinstance(a, str) else next(iter(a)) for a in data.get(key) or []]
    return merged


@pytest.fixture(scope="session")
def domain() -> Dict[str, Any]:
    return load_domain()


class FakeCore:
    """Answers core_client.get/post from a script: (method, path) -> body or exception."""

    def __init__(self) -> None:
        self.routes: Dict[Tuple[str, str], List[Any]] = {}
        self.calls: List[Tuple[str, str, Optional[Dict[str, Any]]]] = []

    def on(self, method: str, path: str, *answers: Any) -> "FakeCore":
        """Each call pops the next answer; the last one repeats."""
        self.routes[(method, path)] = list(answers)
        return self

    def refuse(self, method: str, path: str, status: int, code: str, **extra: Any) -> "FakeCore":
        detail = {"code": code, "message": "core message", **extra}
        return self.on(method, path, core_client.CoreError(status, detail))

    def down(self, method: str, path: str) -> "FakeCore":
        return self.on(method, path, core_client.CoreUnavailable("connection refused"))

    async def _answer(self, method: str, path: str, payload: Optional[Dict[str, Any]]) -> Any:
        self.calls.append((method, path, payload))
        answers = self.routes.get((method, path))
        if not answers:
            raise AssertionError(f"unexpected core call {method} {path}")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def get(self, path: str, params: Optional[Dict[str, Any]] = None) -> Any:
        return await self._answer("GET", path, params)

    async def post(self, path: str, json: Dict[str, Any]) -> Any:
        return await self._answer("POST", path, json)


@pytest.fixture
def core(monkeypatch) -> FakeCore:
    fake = FakeCore()
    monkeypatch.setattr(core_client, "get", fake.get)
    monkeypatch.setattr(core_client, "post", fake.post)
    return fake


def make_tracker(slots: Optional[Dict[str, Any]] = None, *, intent: str = "inform_identity",
                 entities: Optional[List[Dict[str, Any]]] = None, text: str = "",
                 metadata: Optional[Dict[str, Any]] = None, active_loop: Optional[str] = None,
                 slot_events: Optional[Dict[str, Any]] = None, sender_id: str = "web-abc") -> Tracker:
    """A tracker whose last events are the form's slot candidates (what Rasa sends a validator)."""
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.99},
              "entities": entities or [], "metadata": metadata or {}}
    all_slots = {"verified": False, **(slots or {}), **(slot_events or {})}
    events: List[Dict[str, Any]] = [
        {"event": "user", "text": text, "parse_data": latest, "metadata": metadata or {}},
        {"event": "action", "name": active_loop or "action_listen"},
    ]
    events += [{"event": "slot", "name": k, "value": v} for k, v in (slot_events or {}).items()]
    return Tracker(sender_id, all_slots, latest, events, False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


class Reply:
    """What an action did: its events, and its messages rendered from the domain."""

    def __init__(self, events: List[Dict[str, Any]], messages: List[Dict[str, Any]],
                 domain: Dict[str, Any], slots: Dict[str, Any]):
        self.events = events
        self.responses = [m.get("response") for m in messages]
        self.texts = [render(domain, m, slots) for m in messages]
        self.text = "\n".join(self.texts)
        self.buttons = [b for m in messages for b in m.get("buttons") or []]
        self.customs = [m.get("custom") for m in messages if m.get("custom")]  # payloads for the gateway/widget

    def slots(self) -> Dict[str, Any]:
        return {e["name"]: e["value"] for e in self.events if e.get("event") == "slot"}


def render(domain: Dict[str, Any], message: Dict[str, Any], slots: Dict[str, Any]) -> str:
    """Fills a response template as Rasa's NLG does; a missing variable fails the test."""
    if message.get("text"):
        return message["text"]
    if message.get("custom"):  # a json_message for the widget: no text to render
        return ""
    name = message["response"]
    variants = domain["responses"].get(name)
    assert variants, f"response {name} is not in the domain"
    template = variants[0]["text"]
    values = ChainMap(message, slots)
    for _, field, _, _ in string.Formatter().parse(template):
        assert field is None or field in values, f"{name} needs {{{field}}}"
    return template.format_map(values)


def run(action, tracker: Tracker, domain: Dict[str, Any]) -> Reply:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, domain))
    slots = dict(tracker.slots)
    slots.update({e["name"]: e["value"] for e in events if e.get("event") == "slot"})
    return Reply(events, dispatcher.messages, domain, slots)
