"""Fixtures for the sandbox core: a seeded template database copied per test, a manual
clock, fakeredis for the PII vault, an audit log, and an app client. Every test runs with
ANJU_ENV=test (the core defaults to production) unless it builds CoreSettings itself."""
from __future__ import annotations

import datetime as dt
import dataclasses
import shutil
from decimal import Decimal
from pathlib import Path

import fakeredis
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fund import seed as seeding
from fund.api import create_app
from fund.audit import AuditLog
from fund.clock import ManualClock
from fund.db import make_engine, make_session_factory
from fund.facts import PersonFacts, months_before
from fund.retirement import RetirementGroup
from fund.rulebook import load_rulebook
from fund.settings import POLICY_DIR, CoreSettings, get_settings

AS_OF = dt.date(2026, 11, 23)
START = dt.datetime(2026, 11, 23, 2, 0)   # naive UTC = 10:00 in China on AS_OF
TOKEN = "test-core-token"
AUDIT_KEY = "test-audit-key"


@pytest.fixture(autouse=True)
def test_environment(monkeypatch):
    """ANJU_ENV=test for anything that reads the environment (get_settings, the CLIs)."""
    monkeypatch.setenv("ANJU_ENV", "test")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("core") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    people = seeding.seed(engine, seeding.DEFAULT_SEED, AS_OF)
    engine.dispose()
    return path, {p.key: p for p in people}


@pytest.fixture
def demo(template_db) -> dict:
    return template_db[1]


@pytest.fixture
def db_url(template_db, tmp_path) -> str:
    path = tmp_path / "core.db"
    shutil.copy(template_db[0], path)
    return f"sqlite:///{path}"


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def audit_key() -> bytes:
    return AUDIT_KEY.encode()


@pytest.fixture
def audit_log(sessions, audit_key) -> AuditLog:
    return AuditLog(sessions, audit_key)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def rules():
    return load_rulebook(POLICY_DIR / "rules")


@pytest.fixture
def redis_store():
    return fakeredis.FakeRedis()


def make_settings(db_url: str, **overrides) -> CoreSettings:
    return CoreSettings(**{"core_database_url": db_url, "core_api_token": SecretStr(TOKEN),
                           "core_audit_key": SecretStr(AUDIT_KEY), "anju_env": "test", **overrides})


@pytest.fixture
def make_client(db_url, clock, redis_store):
    """A new app on the same database, clock and redis: what a restart looks like."""
    def build(**overrides) -> TestClient:
        app = create_app(make_settings(db_url, **overrides), clock=clock, redis_client=redis_store)
        return TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})
    return build


@pytest.fixture
def client(make_client):
    with make_client() as test_client:
        yield test_client


def build_facts(**changes) -> PersonFacts:
    base = PersonFacts(
        today=AS_OF, birth_date=dt.date(1994, 3, 12), retirement_group=RetirementGroup.male, hukou_city="常州",
        city="常州", account_status="normal", status_date=dt.date(2020, 1, 1), balance=Decimal("50000.00"),
        deposit_base=Decimal("8000"), employer_ratio=Decimal("0.12"), personal_ratio=Decimal("0.12"),
        deposits={m: Decimal("1920.00") for m in months_before(AS_OF, 36)})
    return dataclasses.replace(base, **changes)


@pytest.fixture
def make_facts():
    """make_facts(**changes): a renter in 常州 with 36 full months, changed per test."""
    return build_facts
