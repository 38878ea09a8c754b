"""Fixtures shared by the gateway's unit tests (fakeredis only; the real server is in tests/integration)."""
import fakeredis
import pytest


@pytest.fixture
async def redis():
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    yield client
    await client.aclose()
