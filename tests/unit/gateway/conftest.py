"""Fixtures shared by the gateway's unit tests (fakeredis only; the real server is in tests/integration).
The app itself with a fake Rasa: gateway_app.gateway_client."""
import fakeredis
import pytest


@pytest.fixture
async def redis():
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield client
    await client.aclose()
