"""The core fails closed: production unless told otherwise, and production refuses every
development placeholder with one error naming the setting."""
import pytest
from pydantic import SecretStr, ValidationError

from fund.api import create_app
from fund.settings import CoreSettings, anchor_path_for, describe

PRODUCTION = {"anju_env": "production", "core_api_token": SecretStr("a-real-token"),
              "core_audit_key": SecretStr("0123456789abcdef" * 2)}


def refusal(**values) -> str:
    with pytest.raises(ValidationError) as caught:
        CoreSettings(**values)
    return describe(caught.value)


def test_default_environment_is_production(monkeypatch):
    monkeypatch.delenv("ANJU_ENV")
    assert CoreSettings(**{k: v for k, v in PRODUCTION.items() if k != "anju_env"}).anju_env == "production"
    message = refusal()   # nothing set at all: the dev placeholders are refused
    assert "CORE_API_TOKEN" in message and "CORE_AUDIT_KEY" in message and "\n" not in message


def test_unknown_environment_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("ANJU_ENV", "prod")
    with pytest.raises(ValidationError) as caught:
        CoreSettings()
    assert describe(caught.value).startswith("ANJU_ENV: ") and "'prod'" in describe(caught.value)


def test_production_with_real_secrets_starts_without_seeding_or_dev_endpoints():
    settings = CoreSettings(**PRODUCTION)
    assert not settings.core_auto_seed and not settings.dev_endpoints


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_and_test_seed_and_serve_the_outbox_by_default(env):
    settings = CoreSettings(anju_env=env)
    assert settings.core_auto_seed and settings.dev_endpoints


def test_production_refuses_the_dev_core_token():
    assert "CORE_API_TOKEN" in refusal(**{**PRODUCTION, "core_api_token": SecretStr("dev-core-token")})


@pytest.mark.parametrize("key", ["dev-audit-key", "", "short"])
def test_production_refuses_a_dev_missing_or_short_audit_key(key):
    assert "CORE_AUDIT_KEY" in refusal(**{**PRODUCTION, "core_audit_key": SecretStr(key)})


def test_production_refuses_auto_seed(monkeypatch):
    monkeypatch.setenv("CORE_AUTO_SEED", "true")
    assert "CORE_AUTO_SEED" in refusal(**PRODUCTION)


def test_an_empty_token_is_refused_everywhere():
    assert "CORE_API_TOKEN is empty" in refusal(anju_env="development", core_api_token=SecretStr(""))


def test_secrets_are_never_echoed(monkeypatch):
    monkeypatch.setenv("CORE_API_TOKEN", "dev-very-secret-token")
    assert "dev-very-secret-token" not in refusal(anju_env="production")


def test_production_app_does_not_mount_the_outbox(db_url, clock, redis_store):
    app = create_app(CoreSettings(**PRODUCTION, core_database_url=db_url), clock=clock, redis_client=redis_store)
    assert not [r for r in app.routes if getattr(r, "path", "").startswith("/dev")]


def test_anchor_file_defaults_to_next_to_the_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'core.db'}"
    assert CoreSettings(anju_env="test", core_database_url=url).core_audit_anchor_path == tmp_path / "audit-anchor.log"
    assert anchor_path_for("postgresql://db/core").as_posix() == "var/audit-anchor.log"
