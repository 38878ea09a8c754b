"""Against the official table of the 2024 decision (渐进式延迟法定退休年龄)."""
import datetime as dt

import pytest

from fund.retirement import (RetirementGroup as G, add_months, describe_age, group_for, retirement_age_months,
                             retirement_date)


@pytest.mark.parametrize("born, group, years, months", [
    (dt.date(1964, 12, 1), G.male, 60, 0),
    (dt.date(1965, 1, 1), G.male, 60, 1),
    (dt.date(1965, 4, 30), G.male, 60, 1),
    (dt.date(1965, 5, 1), G.male, 60, 2),
    (dt.date(1969, 12, 1), G.male, 61, 3),
    (dt.date(1970, 1, 1), G.male, 61, 4),
    (dt.date(1976, 8, 1), G.male, 62, 11),
    (dt.date(1976, 9, 1), G.male, 63, 0),
    (dt.date(1990, 1, 1), G.male, 63, 0),
    (dt.date(1969, 12, 1), G.female_cadre, 55, 0),
    (dt.date(1970, 1, 1), G.female_cadre, 55, 1),
    (dt.date(1981, 9, 1), G.female_cadre, 58, 0),
    (dt.date(1974, 12, 1), G.female_worker, 50, 0),
    (dt.date(1975, 1, 1), G.female_worker, 50, 1),
    (dt.date(1975, 3, 1), G.female_worker, 50, 2),
    (dt.date(1984, 10, 1), G.female_worker, 54, 11),
    (dt.date(1984, 11, 1), G.female_worker, 55, 0),
    (dt.date(1995, 6, 1), G.female_worker, 55, 0),
])
def test_official_table(born, group, years, months):
    assert retirement_age_months(born, group) == years * 12 + months


def test_retirement_date_adds_the_age_to_the_birth_date():
    assert retirement_date(dt.date(1965, 1, 15), G.male) == dt.date(2025, 2, 15)
    assert retirement_date(dt.date(1978, 3, 14), G.female_worker) == dt.date(2029, 11, 14)  # 51y8m


def test_month_end_is_clamped():
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert add_months(dt.date(2024, 3, 31), -13) == dt.date(2023, 2, 28)


def test_groups_and_description():
    assert group_for("M", "worker") is G.male
    assert group_for("F", "worker") is G.female_worker
    assert group_for("F", "cadre") is G.female_cadre
    assert describe_age(723) == "60周岁3个月" and describe_age(756) == "63周岁"
