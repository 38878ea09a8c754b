"""Withdrawal and loan rules as data: fund/policy/rules/national.yml plus one file per city.

A city file holds only what differs from the national default and is deep-merged over
it (mappings merge, lists and values replace), so adding a city is adding a file and a
centre corrects a figure by editing data. Everything is validated by the models below
at load time; `verified: false` marks parameters not confirmed against an official text.
"""
from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field

from fund.errors import PolicyError

UNVERIFIED_NOTE = "以上部分参数尚未经当地公积金中心核实，以当地公积金中心最新公告为准。"
KINDS = ("rent", "purchase", "retirement", "leave_job", "renovation", "property_fee",
         "illness", "loan_repayment", "other")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- withdrawal conditions: one model per check, chosen by its `check` name -------------

class AccountNotFrozen(Strict):
    check: Literal["account_not_frozen"]


class BalancePositive(Strict):
    check: Literal["balance_positive"]


class ContinuousDeposits(Strict):
    check: Literal["continuous_deposits"]
    months: int = Field(ge=1, le=60)


class NoHomeInCity(Strict):
    check: Literal["no_home_in_city"]
    include_spouse: bool = True


class OwnsHomeInCity(Strict):
    check: Literal["owns_home_in_city"]
    include_spouse: bool = True


class RecentPurchase(Strict):
    check: Literal["recent_purchase"]
    within_months: int = Field(ge=1, le=120)


class PurchaseCity(Strict):
    check: Literal["purchase_city"]
    allowed: Literal["deposit_city", "deposit_or_hukou_city", "any"]


class HomesAtMost(Strict):
    check: Literal["homes_at_most"]
    count: int = Field(ge=1)


class Retired(Strict):
    check: Literal["retired"]


class AccountSealed(Strict):
    check: Literal["account_sealed"]
    months: int = Field(ge=0, le=120)
    local_hukou_months: Optional[int] = Field(default=None, ge=0, le=240)


class SeriousIllness(Strict):
    check: Literal["serious_illness"]


class ActiveLoan(Strict):
    check: Literal["active_loan"]
    loan_types: list[Literal["fund", "commercial"]] = ["fund", "commercial"]


class ManualReview(Strict):
    check: Literal["manual_review"]
    reason: str = Field(min_length=1)


Condition = Annotated[Union[AccountNotFrozen, BalancePositive, ContinuousDeposits, NoHomeInCity,
                            OwnsHomeInCity, RecentPurchase, PurchaseCity, HomesAtMost, Retired,
                            AccountSealed, SeriousIllness, ActiveLoan, ManualReview],
                      Field(discriminator="check")]


class Material(Strict):
    name: str
    # Shared-data source that makes it 免提交: identity, home_ownership, marriage, deposits,
    # loan, retirement, illness, purchase_contract, lease, employment_ended, medical_bills
    # (see fund.shared_data). None means the citizen uploads it.
    shared: Optional[Literal["identity", "home_ownership", "marriage", "deposits", "loan",
                             "retirement", "illness", "purchase_contract", "lease",
                             "employment_ended", "medical_bills"]] = None
    upload_name: Optional[str] = None   # what to upload when the shared record is missing


class Amount(Strict):
    # lease_rent: 12 months of the registered rent (none without a lease registration);
    # medical_bills: what the patient paid per the shared bills (the balance without them).
    basis: Literal["balance", "home_price", "loan_balance", "lease_rent", "medical_bills", "none"]
    cap: Optional[Decimal] = Field(default=None, gt=0)
    note: Optional[str] = None


class KindRule(Strict):
    name: str
    effective_from: dt.date
    verified: bool
    source: str = Field(min_length=1)
    conditions: list[Condition]
    amount: Amount
    materials: list[Material] = []


class Withdrawal(Strict):
    common_conditions: list[Condition] = []
    kinds: dict[Literal[KINDS], KindRule]  # type: ignore[valid-type]


# --- loans ---------------------------------------------------------------------------

class RatePair(Strict):
    short: Decimal = Field(gt=0, lt=20)   # percent a year, term ≤ 5 years
    long: Decimal = Field(gt=0, lt=20)    # percent a year, term > 5 years


class RateTable(Strict):
    effective_from: dt.date
    verified: bool
    source: str
    first: RatePair
    second: RatePair


class HouseOrderCaps(Strict):
    first: Decimal = Field(gt=0)
    second: Decimal = Field(gt=0)


class LoanRules(Strict):
    effective_from: dt.date
    verified: bool
    source: str
    city_cap: HouseOrderCaps
    balance_multiple: Decimal = Field(gt=0)
    income_share: Decimal = Field(gt=0, le=1)
    max_years: int = Field(ge=1, le=40)
    years_after_retirement: int = Field(ge=0, le=10)
    min_deposit_months: int = Field(ge=0)
    rates: list[RateTable] = Field(min_length=1)

    def rates_on(self, day: dt.date) -> RateTable:
        current = [r for r in self.rates if r.effective_from <= day]
        if not current:
            raise PolicyError(f"no loan rate table in force on {day}")
        return max(current, key=lambda r: r.effective_from)


class CityRules(Strict):
    name: str
    aliases: list[str] = []
    is_national: bool = False
    withdrawal: Withdrawal
    loan: LoanRules


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class Rulebook:
    """The national default and every city, validated; `for_city` never returns None."""

    def __init__(self, national: CityRules, cities: dict[str, CityRules]):
        self.national = national
        self.cities = cities
        self._by_alias = {alias: c for c in cities.values() for alias in (c.name, *c.aliases)}

    @classmethod
    def load(cls, rules_dir: Path) -> "Rulebook":
        def read(path: Path) -> dict[str, Any]:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise PolicyError(f"{path}: expected a mapping")
            return data

        national_raw = read(rules_dir / "national.yml")
        try:
            national = CityRules.model_validate({**national_raw, "is_national": True})
            cities = {}
            for path in sorted(rules_dir.glob("*.yml")):
                if path.name == "national.yml":
                    continue
                city = CityRules.model_validate({**deep_merge(national_raw, read(path)), "is_national": False})
                if city.name != path.stem:
                    raise PolicyError(f"{path}: name '{city.name}' does not match the file name")
                cities[city.name] = city
        except ValueError as exc:
            raise PolicyError(str(exc)) from exc
        return cls(national, cities)

    def find(self, city: Optional[str]) -> Optional[CityRules]:
        return self._by_alias.get((city or "").strip())

    def for_city(self, city: Optional[str]) -> CityRules:
        return self.find(city) or self.national


@lru_cache(maxsize=4)
def load_rulebook(rules_dir: Path) -> Rulebook:
    return Rulebook.load(rules_dir)
