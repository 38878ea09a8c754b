"""Engine and sessions for the core's database (SQLite by default, PostgreSQL by URL)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fund.models import Base, Person


# PostgreSQL drivers tried for a bare postgresql:// URL, in order: psycopg 3 (binary wheels), then
# pg8000 (pure Python). SQLAlchemy's own default for a bare URL is psycopg2, which the project does not use.
POSTGRES_DRIVERS = ("psycopg", "pg8000")


def database_url(url: str) -> str:
    """The SQLAlchemy URL for CORE_DATABASE_URL: postgres:// and a bare postgresql:// get an
    installed driver (postgresql+psycopg:// or postgresql+pg8000://); any other URL is unchanged."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgres", "postgresql"):
        return url
    for driver in POSTGRES_DRIVERS:
        if importlib.util.find_spec(driver) is not None:
            return f"postgresql+{driver}://{rest}"
    raise RuntimeError("CORE_DATABASE_URL is a PostgreSQL URL but no PostgreSQL driver is installed "
                       "(install psycopg[binary] or pg8000 into the app venv)")


def make_engine(url: str) -> Engine:
    """Creates the SQLite file's folder if needed; SQLite gets WAL and a busy timeout.
    PostgreSQL gets a pre-ping, so a connection the server dropped (restart, failover) is replaced."""
    url = database_url(url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
    return engine


T = TypeVar("T")
WRITE_LOCK_ID = 0x616E6A75  # PostgreSQL advisory lock that serialises audited units of work ("anju")


def lock_for_write(session: Session) -> None:
    """Takes the database's write lock now, before the unit of work reads anything.

    What the unit of work reads (failure counters, the audit chain's head) then stays current
    until it commits, so two writers cannot both append the same audit seq. SQLite: BEGIN
    IMMEDIATE (pysqlite opens a transaction only at the first write, so nothing is open yet,
    or a write already holds the lock). PostgreSQL: a transaction-scoped advisory lock.
    Other databases rely on the audit seq primary key and write_transaction's retry.
    """
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "sqlite":
        if not connection.connection.dbapi_connection.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": WRITE_LOCK_ID})


def write_transaction(sessions: sessionmaker[Session], work: Callable[[Session], T], attempts: int = 5) -> T:
    """Runs work(session) as one transaction under lock_for_write and commits it; a conflicting
    insert (another process took the same audit seq) rolls it all back and runs it again."""
    for attempt in range(1, attempts + 1):
        try:
            with sessions.begin() as session:
                lock_for_write(session)
                return work(session)
        except IntegrityError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def create_schema(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    add_missing_columns(engine)


def add_missing_columns(engine: Engine) -> list[str]:
    """Adds the nullable columns a newer schema has to tables an older one created.

    create_all makes new tables but never alters existing ones; the sandbox has no migration
    tool, so columns added later are Optional and added here (ALTER TABLE … ADD COLUMN).
    """
    inspector = inspect(engine)
    added = []
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present or not column.nullable:
                    continue
                kind = column.type.compile(dialect=engine.dialect)
                connection.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}')
                added.append(f"{table.name}.{column.name}")
    return added


def is_empty(engine: Engine) -> bool:
    with Session(engine) as session:
        return session.scalar(select(Person.id).limit(1)) is None
