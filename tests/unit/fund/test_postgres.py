"""The sandbox core on PostgreSQL: the same flows as on SQLite, against a private cluster.

A throwaway cluster (initdb into a temp dir, as the postgres user when run as root, listening on a
unix socket only, so it works inside the tests' private network namespace) is started once for this
module; every test gets its own database. Each installed driver (psycopg 3, pg8000) is tried. Without
the PostgreSQL binaries or a driver the tests skip with the reason, except under CI (CI=true), where
scripts/setup.sh installs both and a skip would hide a broken core.
"""
from __future__ import annotations

import datetime as dt
import glob
import importlib.util
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, text

from fund import audit
from fund import seed as seeding
from fund.audit import AuditLog
from fund.api import create_app
from fund.db import POSTGRES_DRIVERS, add_missing_columns, database_url, is_empty, make_engine, make_session_factory
from fund.models import Account, Application, AuditRecord, Person
from fund.rulebook import KINDS
from fund.settings import CoreSettings

TOKEN = "test-core-token"
AUDIT_KEY = "test-audit-key"
AS_OF = dt.date(2026, 11, 23)   # the date of the fund conftest's clock: the same demo persons
SOCKET_PORT = 5432   # only names the socket file (.s.PGSQL.5432) in the cluster's private folder


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason} (scripts/setup.sh installs it)")
    pytest.skip(reason)


def postgres_bin(name: str) -> str | None:
    """Debian keeps initdb/pg_ctl under /usr/lib/postgresql/<major>/bin, not on PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which(name)


class Cluster:
    def __init__(self, root: Path, initdb: str, pg_ctl: str):
        self.root, self.data, self.pg_ctl = root, root / "data", pg_ctl
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:   # initdb refuses to run as root
            shutil.chown(root, "postgres", "postgres")
        self.run(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        self.run(pg_ctl, "-D", str(self.data), "-l", str(root / "server.log"), "-w", "-t", "60", "-o",
                 f"-k {root} -c listen_addresses='' -p {SOCKET_PORT} -F", "start")

    def run(self, *argv: str) -> None:
        done = subprocess.run([*self.as_postgres, *argv], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.root / "server.log"
            raise RuntimeError(f"{argv[0]} failed: {done.stderr or done.stdout}"
                               f"{log.read_text() if log.exists() else ''}")

    def url(self, database: str, driver: str | None = None) -> str:
        """A bare postgresql:// URL (as an operator writes CORE_DATABASE_URL) or one naming the driver."""
        if driver == "pg8000":
            return f"postgresql+pg8000://postgres@/{database}?unix_sock={self.root}/.s.PGSQL.{SOCKET_PORT}"
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://postgres@/{database}?host={self.root}&port={SOCKET_PORT}"

    def create_database(self, name: str, driver: str, template: str = "template1") -> None:
        engine = make_engine(self.url("postgres", driver)).execution_options(isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        engine.dispose()

    def stop(self) -> None:
        subprocess.run([*self.as_postgres, self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    if not any(importlib.util.find_spec(d) for d in POSTGRES_DRIVERS):
        unavailable("no PostgreSQL driver in this venv (psycopg[binary] or pg8000)")
    root = Path(tempfile.mkdtemp(prefix="anju-pg-"))   # not under pytest's 0700 root-owned tmp: postgres must enter
    try:
        pg = Cluster(root, initdb, pg_ctl)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start a private PostgreSQL cluster: {exc}")
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


# The drivers installed here (the project locks psycopg; pg8000 works too where an operator installs it).
INSTALLED_DRIVERS = [d for d in POSTGRES_DRIVERS if importlib.util.find_spec(d)] or ["psycopg"]


@pytest.fixture(params=INSTALLED_DRIVERS)
def driver(request) -> str:
    if importlib.util.find_spec(request.param) is None:
        unavailable("no PostgreSQL driver in this venv (psycopg[binary] or pg8000)")
    return request.param


@pytest.fixture(scope="module")
def templates(cluster) -> dict:
    """One seeded database per driver, copied (CREATE DATABASE … TEMPLATE) for each test."""
    return {}


@pytest.fixture
def seeded(cluster, driver, templates) -> tuple[str, dict]:
    if driver not in templates:
        name = f"tpl_{driver}"
        cluster.create_database(name, driver)
        engine = make_engine(cluster.url(name, driver))
        people = seeding.seed(engine, seeding.DEFAULT_SEED, AS_OF)   # seeding itself on PostgreSQL
        engine.dispose()   # a template must have no open connection
        templates[driver] = (name, {p.key: p for p in people})
    return templates[driver]


def fresh_database(request, cluster, driver, template: str = "template1") -> str:
    """An empty (template1) or seeded (the template's copy) database named after the test and driver."""
    name = "".join(c if c.isalnum() else "_" for c in request.node.name.removeprefix("test_").lower())
    name = f"t_{name[:40]}_{driver}"
    cluster.create_database(name, driver, template)
    return name


@pytest.fixture
def pg_url(request, cluster, driver, seeded) -> str:
    return cluster.url(fresh_database(request, cluster, driver, seeded[0]), driver)


@pytest.fixture
def demo(seeded) -> dict:
    return seeded[1]


def settings_for(url: str, anchor: Path) -> CoreSettings:
    return CoreSettings(core_database_url=url, core_api_token=SecretStr(TOKEN), core_audit_key=SecretStr(AUDIT_KEY),
                        anju_env="test", core_auto_seed=True, core_audit_anchor_path=anchor)


def open_client(url: str, tmp_path: Path, clock, redis_store) -> TestClient:
    app = create_app(settings_for(url, tmp_path / "audit-anchor.log"), clock=clock, redis_client=redis_store)
    return TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def client(pg_url, tmp_path, clock, redis_store) -> Iterator[TestClient]:
    with open_client(pg_url, tmp_path, clock, redis_store) as test_client:
        yield test_client


def last_code(client) -> str:
    return client.get("/dev/outbox", params={"limit": 1}).json()["messages"][0]["code"]


def login(client, person) -> str:
    started = client.post("/identity/challenges", json={"id_number": person.id_number, "name": person.name,
                                                        "channel_ref": "web:pg1"})
    assert started.status_code == 201, started.text
    verified = client.post(f"/identity/challenges/{started.json()['challenge_id']}/verify",
                           json={"code": last_code(client)})
    assert verified.status_code == 200, verified.text
    return verified.json()["person_ref"]


def sign_and_submit(client, ref, kind, amount, key):
    started = client.post("/applications/sign-challenges", json={"person_ref": ref, "kind": kind, "amount": amount})
    assert started.status_code == 201, started.text
    challenge_id, code = started.json()["challenge_id"], last_code(client)
    submit = lambda k=key, a=amount: client.post("/applications", json={  # noqa: E731
        "person_ref": ref, "kind": kind, "amount": a, "idempotency_key": k, "challenge_id": challenge_id, "code": code})
    return submit, challenge_id, code


def chain_ok(url: str) -> int:
    engine = make_engine(url)
    try:
        report = audit.verify(engine, AUDIT_KEY.encode())
    finally:
        engine.dispose()
    assert report.ok, report.reason
    return report.records


def scalar(url: str, statement):
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(statement)
    finally:
        engine.dispose()


# --- the URL an operator writes -----------------------------------------------------------------
def test_a_bare_postgresql_url_gets_an_installed_driver_and_sqlite_is_unchanged(monkeypatch):
    assert database_url("sqlite:///var/core.db") == "sqlite:///var/core.db"
    assert database_url("postgresql+pg8000://u@h/db") == "postgresql+pg8000://u@h/db"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "pg8000" else None)
    assert database_url("postgresql://u:p@db:5432/anju") == "postgresql+pg8000://u:p@db:5432/anju"
    assert database_url("postgres://u@db/anju") == "postgresql+pg8000://u@db/anju"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="no PostgreSQL driver"):
        database_url("postgresql://u@db/anju")


# --- the core's flows on PostgreSQL ---------------------------------------------------------------
def test_an_empty_database_is_created_and_seeded_once_from_a_bare_url(request, cluster, driver, demo, tmp_path,
                                                                     clock, redis_store):
    name = fresh_database(request, cluster, driver)
    bare = cluster.url(name) if driver == "psycopg" else cluster.url(name, driver)  # pg8000 needs unix_sock
    with open_client(bare, tmp_path, clock, redis_store) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert login(client, demo["renter_cz"]).startswith("pr_")   # the same demo persons as on SQLite
    persons = scalar(bare, select(func.count()).select_from(Person))
    assert persons == len(demo)
    with open_client(bare, tmp_path, clock, redis_store) as client:   # a restart neither reseeds nor alters
        assert client.get("/healthz").status_code == 200
    assert scalar(bare, select(func.count()).select_from(Person)) == persons
    engine = make_engine(bare)
    assert not is_empty(engine) and add_missing_columns(engine) == []
    engine.dispose()
    chain_ok(bare)


def test_verify_then_balance_and_withdrawal_check(client, demo, pg_url):
    person = demo["renter_cz"]
    ref = login(client, person)
    balance = client.get(f"/persons/{ref}/balance").json()
    assert balance["id_masked"] == person.id_number[:3] + "*" * 11 + person.id_number[-4:]
    assert balance["account_status_name"] == "正常缴存" and balance["city"] == "常州"
    months = [d["month"] for d in balance["deposits"]]
    assert len(months) == 12 and months[0] == "2026-10" and months == sorted(months, reverse=True)
    checks = client.get(f"/persons/{ref}/withdrawal-check", params={"kind": "all"}).json()
    assert [r["kind"] for r in checks["results"]] == list(KINDS)
    rent = client.get(f"/persons/{ref}/withdrawal-check", params={"kind": "rent"}).json()["results"]
    assert len(rent) == 1 and rent[0]["eligible"]
    frozen = login(client, demo["frozen"])
    assert not client.get(f"/persons/{frozen}/withdrawal-check", params={"kind": "rent"}).json()["results"][0]["eligible"]
    assert chain_ok(pg_url) >= 6   # per login: challenge sent, code checked, session opened


def test_five_wrong_codes_lock_even_the_right_one(client, demo, pg_url):
    person = demo["renter_cz"]
    started = client.post("/identity/challenges", json={"id_number": person.id_number, "name": person.name,
                                                        "channel_ref": "web:pg2"}).json()
    code = last_code(client)
    wrong = f"{(int(code) + 1) % 10 ** 6:06d}"
    verify = lambda c: client.post(f"/identity/challenges/{started['challenge_id']}/verify", json={"code": c})  # noqa: E731
    answers = [verify(wrong) for _ in range(5)]
    assert [a.status_code for a in answers[:4]] == [answers[0].status_code] * 4 and answers[0].status_code in (400, 401, 422)
    assert answers[4].status_code == 429 or answers[4].json()["detail"]["code"] != answers[0].json()["detail"]["code"]
    assert verify(code).status_code == answers[4].status_code, "while locked even the right code is refused"
    chain_ok(pg_url)


def test_online_application_is_idempotent_and_paid_once(client, demo, clock, pg_url):
    person = demo["left_job_8m"]
    ref = login(client, person)
    balance = lambda: scalar(pg_url, select(Account.balance).join(Person, Person.id == Account.person_id)  # noqa: E731
                             .where(Person.id_number == person.id_number))
    before = balance()
    submit, challenge_id, code = sign_and_submit(client, ref, "leave_job", 5000, "confirm-pg-0001")
    first, again = submit(), submit()
    assert first.status_code == 201 and again.status_code == 200, (first.text, again.text)
    assert again.json()["duplicate"] and again.json()["id"] == first.json()["id"]
    other = submit(a=4000)
    assert other.status_code == 409 and other.json()["detail"]["code"] == "idempotency_key_reused"
    online = select(func.count()).select_from(Application).where(Application.amount.is_not(None))
    assert scalar(pg_url, online) == 1
    clock.advance(seconds=121 + 300)   # the sandbox approves after 120 s and pays 300 s later
    paid = client.get(f"/applications/{first.json()['id']}", params={"person_ref": ref}).json()
    assert paid["status"] == "paid" and paid["amount"] == 5000
    assert balance() == before - Decimal(5000)
    chain_ok(pg_url)


def test_simultaneous_confirmations_make_one_application(client, demo, pg_url):
    ref = login(client, demo["renter_mas"])
    _, challenge_id, code = sign_and_submit(client, ref, "rent", 3000, "unused")
    service, identity = client.app.state.core.applications, client.app.state.core.identity
    person_id, channel_ref = identity.touch(ref)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: service.submit(person_id, channel_ref, "rent", Decimal(3000),
                                                         "double-tap-pg-01", challenge_id, code), range(4)))
    assert len({r.view["id"] for r in results}) == 1 and sum(not r.duplicate for r in results) == 1
    assert scalar(pg_url, select(func.count()).select_from(Application).where(Application.amount.is_not(None))) == 1
    chain_ok(pg_url)


def test_two_core_replicas_append_to_one_unbroken_chain(pg_url):
    """Two engines (as two core processes would have) appending at once: the advisory lock keeps
    the chain's seq and prev_hash in order across connections."""
    before = chain_ok(pg_url)
    engines = [make_engine(pg_url) for _ in range(2)]
    logs = [AuditLog(make_session_factory(e), AUDIT_KEY.encode()) for e in engines]

    def append(i: int) -> int:
        return logs[i % 2].append(actor="replica", action="test.append", subject=f"s-{i}", outcome="ok").seq

    try:
        with ThreadPoolExecutor(6) as pool:
            seqs = list(pool.map(append, range(60)))
    finally:
        for engine in engines:
            engine.dispose()
    assert sorted(seqs) == list(range(before + 1, before + 61))
    assert chain_ok(pg_url) == before + 60
    assert scalar(pg_url, select(func.max(AuditRecord.seq))) == before + 60
