"""The gateway app for unit tests, with a fake Rasa and fakeredis: imported by test modules
(`from gateway_app import gateway_client`; a module name no other tests folder uses)."""
from contextlib import contextmanager

import httpx
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.conversation import Conversation
from gateway.limits import RateLimiter
from gateway.rasa_client import RasaClient
from gateway.sessions import SessionStore
from gateway.settings import Settings


@contextmanager
def gateway_client(rasa_handler, redis, clock=None, **overrides):
    """The gateway app with a fake Rasa (an httpx handler) and fakeredis behind sessions, limits and the vault."""
    app = create_app(Settings(_env_file=None, anju_env="test", redis_url="redis://127.0.0.1:1/0", **overrides))
    timed = {"clock": clock} if clock else {}
    with TestClient(app) as client:
        rasa = RasaClient("http://rasa.test", "t", 2.0, transport=httpx.MockTransport(rasa_handler))
        app.state.rasa = rasa
        app.state.conversation = Conversation(rasa, app.state.settings.chat_max_chars, redis)
        app.state.sessions = SessionStore(redis, 3600, 900, **timed)
        app.state.limiter = RateLimiter(redis, **timed)
        yield client
