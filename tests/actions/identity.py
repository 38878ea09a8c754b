"""Fixture for action tests that need the identity assertion key (imported by the test modules)."""
import pytest

from actions.settings import get_settings

KEY = "test-identity-assertion-key"


@pytest.fixture
def assertion_key(monkeypatch) -> bytes:
    """IDENTITY_ASSERTION_KEY for this test, read afresh by actions.settings."""
    monkeypatch.setenv("IDENTITY_ASSERTION_KEY", KEY)
    get_settings.cache_clear()
    yield KEY.encode()
    get_settings.cache_clear()
