"""Seed data: enough demo persons, valid and stable ID numbers, every branch present."""
import datetime as dt

from sqlalchemy import func, select

from fund import id_numbers
from fund import seed as seeding
from fund.db import make_engine
from fund.models import Account, Person


def test_at_least_fifty_valid_unique_persons(template_db):
    people = list(template_db[1].values())
    assert len(people) >= 50
    assert len({p.id_number for p in people}) == len(people)
    for p in people:
        assert id_numbers.validate(p.id_number) == p.id_number
        assert id_numbers.birth_date(p.id_number) == p.birth_date


def test_same_seed_same_people(tmp_path, template_db):
    engine = make_engine(f"sqlite:///{tmp_path / 'again.db'}")
    again = seeding.seed(engine, seeding.DEFAULT_SEED, dt.date(2027, 3, 1))
    assert [(p.name, p.id_number) for p in again] == [(p.name, p.id_number) for p in template_db[1].values()]


def test_branches_present(db_url, demo):
    engine = make_engine(db_url)
    with engine.connect() as conn:
        statuses = dict(conn.execute(select(Account.status, func.count()).group_by(Account.status)).all())
        cities = {c for (c,) in conn.execute(select(Account.city).distinct())}
        disabled = conn.scalar(select(func.count()).where(Person.disabled.is_(True)))
        flexible = conn.scalar(select(func.count()).where(Account.flexible_worker.is_(True)))
    assert {"normal", "sealed", "frozen"} <= set(statuses)
    assert {"常州", "马鞍山", "芜湖"} <= cities
    assert disabled >= 2 and flexible >= 2
    assert sum(1 for p in demo.values() if p.openid) >= 4


def test_demo_list_names_every_person(demo):
    text = seeding.demo_list(list(demo.values()))
    assert all(p.id_number in text for p in demo.values())
