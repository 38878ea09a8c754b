"""The action server: rasa_sdk's app, on loopback, closed to anyone without the shared token.

`rasa run actions` binds 0.0.0.0 and accepts any caller. Here the SDK's own app
(`rasa_sdk.endpoint.create_app`) gets two additions:

* a request middleware: /webhook and /actions answer 401 unless the request carries
  `X-Anju-Action-Token` equal to ACTION_SERVER_TOKEN (Rasa sends it from the
  `headers:` of bot/endpoints.yml); /health stays open for the supervisors;
* one deadline per action call (ACTION_DEADLINE_S, below the gateway's Rasa timeout;
  Rasa itself waits 300 s): an action still running then is cancelled and the citizen
  reads one clear sentence instead of waiting for a gateway error.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any, Dict, List, Optional

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from actions.settings import ActionSettings, get_settings
from bot.observability import NO_REQUEST, REQUEST_ID, REQUEST_ID_METADATA, accepted_request_id

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Anju-Action-Token"
PROTECTED_PATHS = ("/webhook", "/actions")
# There is no domain response for this (the domain is not changed for it), so plain text.
TIMEOUT_TEXT = "系统处理超时，请稍后再试；也可以说“转人工”。"


def create_app(settings: Optional[ActionSettings] = None, action_package_name: Any = "actions") -> Sanic:
    """The SDK's app with the token check and the deadline; refuses settings production forbids."""
    from rasa_sdk.endpoint import create_app as create_sdk_app

    settings = settings or get_settings()
    settings.check_for_start()
    app = create_sdk_app(action_package_name=action_package_name, cors_origins=None)
    expected = settings.action_server_token.encode()

    @app.on_request
    async def require_token(request: Request) -> Optional[HTTPResponse]:
        if not request.path.startswith(PROTECTED_PATHS):
            return None
        given = request.headers.get(TOKEN_HEADER, "").encode()
        if expected and hmac.compare_digest(given, expected):
            return None
        logger.warning("actions.request.refused path=%s reason=%s", request.path,
                       "missing_token" if not given else "wrong_token")
        return response.json({"error": "unauthorized", "message": f"{TOKEN_HEADER} header missing or wrong"},
                             status=401)

    _limit_webhook(app, settings.action_deadline_s)
    return app


def _limit_webhook(app: Sanic, deadline_s: float) -> None:
    """Wraps the SDK's /webhook handler so that one action call lasts at most `deadline_s`."""
    routes = [r for r in app.router.routes if r.path.strip("/") == "webhook"]
    if len(routes) != 1:
        raise RuntimeError(f"expected one /webhook route in the rasa_sdk app, found {len(routes)}")
    route = routes[0]
    handler = route.handler

    async def webhook_with_deadline(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
        # The gateway's request id for this turn, from the message metadata: core calls carry it on.
        REQUEST_ID.set(turn_request_id(_action_call(request)) or NO_REQUEST)
        try:
            return await asyncio.wait_for(handler(request, *args, **kwargs), timeout=deadline_s)
        except asyncio.TimeoutError:
            call = _action_call(request)
            logger.warning("actions.deadline.exceeded action=%s deadline_s=%s", call.get("next_action"), deadline_s)
            return response.json(timeout_result(call))

    webhook_with_deadline.__name__ = getattr(handler, "__name__", "webhook")
    route.handler = webhook_with_deadline


def _action_call(request: Request) -> Dict[str, Any]:
    try:
        body = request.json
    except Exception:  # a compressed or broken body: the SDK handler dealt with it already
        return {}
    return body if isinstance(body, dict) else {}


def turn_request_id(call: Dict[str, Any]) -> Optional[str]:
    tracker = call.get("tracker") if isinstance(call.get("tracker"), dict) else {}
    latest = tracker.get("latest_message") if isinstance(tracker.get("latest_message"), dict) else {}
    metadata = latest.get("metadata") if isinstance(latest.get("metadata"), dict) else {}
    return accepted_request_id(metadata.get(REQUEST_ID_METADATA))


def timeout_result(call: Dict[str, Any]) -> Dict[str, Any]:
    """What Rasa gets for an action that ran out of time: one message, and no events.

    A form validator is the exception: Rasa has already set the slot candidates of this
    turn, so they are reset, or an answer nobody checked (an ID, a code) would fill the form.
    """
    events: List[Dict[str, Any]] = []
    if str(call.get("next_action", "")).startswith("validate_"):
        events = [{"event": "slot", "name": name, "value": None, "timestamp": None}
                  for name in _slot_candidates(call.get("tracker") or {})]
    return {"events": events, "responses": [{"text": TIMEOUT_TEXT}]}


def _slot_candidates(tracker: Dict[str, Any]) -> List[str]:
    """Slots set since the citizen's last message (what a form validator was asked to check)."""
    names: List[str] = []
    for event in reversed(tracker.get("events") or []):
        if event.get("event") == "user":
            break
        name = event.get("name")
        if event.get("event") == "slot" and name != "requested_slot" and name not in names:
            names.append(name)
    return list(reversed(names))


def serve(port: int, settings: Optional[ActionSettings] = None) -> None:
    """Runs the server in the foreground, bound to ACTION_SERVER_HOST (loopback by default)."""
    settings = settings or get_settings()
    app = create_app(settings)
    logger.info("actions.server.started host=%s port=%d deadline_s=%s env=%s",
                settings.action_server_host, port, settings.action_deadline_s, settings.anju_env)
    app.run(host=settings.action_server_host, port=port, workers=1, access_log=False)
