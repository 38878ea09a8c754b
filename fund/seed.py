"""Seeds the sandbox with demo persons: `python -m fund.seed [--database-url URL] [--reset]`.

Deterministic: the same --seed and --as-of give the same data (ID numbers and names do not
depend on --as-of). `--write-list fund/DEMO_PERSONS.md` regenerates the testers' list.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import random
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Optional

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fund import demo_cases as dc
from fund.facts import money, month_of
from fund.id_numbers import make_id_number
from fund.models import (Account, Application, ApplicationStep, Base, Deposit, HomeOwnership, Loan, Person)
from fund.retirement import add_months

logger = logging.getLogger(__name__)
DEFAULT_SEED = 2026
FILLERS = 16
SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜戚谢邹喻柏水窦章云苏潘葛范彭郎鲁韦昌马苗凤花方俞任袁柳"
GIVEN = "安邦晨辰诚达栋芳菲峰刚海涵浩瀚红宏华慧佳嘉建杰锦静俊凯乐丽亮琳玲敏明娜宁鹏琪清然蓉瑞珊胜婷伟文霞翔欣新秀雪妍阳怡毅颖勇宇玉元悦云哲振志智忠卓子"
EMPLOYERS = ("常州市龙城智能制造有限公司", "马鞍山市江东钢构工程有限公司", "常州天宁区社区卫生服务中心",
             "马鞍山市花山区实验学校", "江南示范物流有限公司", "皖江新能源科技有限公司", "城东数码科技有限公司")
STEPS = {"loan": ("提交申请", "资料审核", "贷款审批", "签订合同", "抵押登记", "发放贷款"),
         "transfer": ("转入申请", "转出地审核", "资金划转", "转入完成")}
WITHDRAWAL_STEPS = ("提交申请", "资料审核", "审批", "资金到账")
DAYS_TO_DONE = {"loan": 15, "transfer": 20}


def _months_ago(as_of: dt.date, months: int) -> dt.date:
    return add_months(as_of, -months)


def _filler(rng: random.Random, index: int) -> dc.Case:
    born = dt.date(rng.randint(1975, 2001), rng.randint(1, 12), rng.randint(1, 28))
    city = rng.choice(("常州", "马鞍山"))
    owns = rng.random() < 0.4
    homes = (dc.HomeSpec(city, rng.randint(13, 120), rng.randint(60, 200) * 10000),) if owns else ()
    return dc.Case(f"ordinary_{index:02d}", "普通缴存职工（" + ("有房" if owns else "租房") + "）", born,
                   rng.choice("MF"), city, base=rng.randint(40, 150) * 100, ratio=rng.choice(("0.05", "0.08", "0.12")),
                   homes=homes, extra_balance=rng.randint(0, 80) * 1000)


class Seeder:
    def __init__(self, session: Session, seed: int, as_of: dt.date):
        self.session, self.as_of = session, as_of
        self.rng = random.Random(seed)
        self.used_ids: set[str] = set()
        self.used_names: set[str] = set()

    def _name(self, gender: str) -> str:
        while True:
            name = self.rng.choice(SURNAMES) + "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2, 2))))
            if name not in self.used_names:
                self.used_names.add(name)
                return name

    def _id_number(self, city: str, born: dt.date, gender: str) -> str:
        while True:
            seq = self.rng.randrange(0, 999)
            seq += (seq % 2 == 0) if gender == "M" else (seq % 2 == 1)
            number = make_id_number(dc.CITY_REGIONS.get(city, "320402"), born, seq % 1000)
            if number not in self.used_ids:
                self.used_ids.add(number)
                return number

    def person(self, case: dc.Case) -> Person:
        hukou = case.hukou or case.city
        person = Person(id_number=self._id_number(hukou, case.born, case.gender), name=self._name(case.gender),
                        birth_date=case.born, gender=case.gender, occupation=case.occupation,
                        phone=f"1{self.rng.choice('3578')}{self.rng.randrange(10 ** 9):09d}",
                        wechat_openid=f"o_demo_{case.key}" if case.wechat else None, disabled=case.disabled,
                        hukou_city=hukou, serious_illness=case.illness, branch=case.branch,
                        retired_on=_months_ago(self.as_of, case.retired_months_ago)
                        if case.retired_months_ago is not None else None)
        self.session.add(person)
        self.session.flush()
        self._account(person, case)
        for home in case.homes:
            self.session.add(HomeOwnership(person_id=person.id, city=home.city, area_m2=Decimal(home.area_m2),
                                           acquired_on=_months_ago(self.as_of, home.months_ago), price=Decimal(home.price)))
        for spec in case.loans:
            self._loan(person, spec)
        for spec in case.applications:
            self._application(person, spec)
        return person

    def _account(self, person: Person, case: dc.Case) -> None:
        base, ratio = Decimal(case.base), Decimal(case.ratio)
        employer_ratio = Decimal(0) if case.flexible else ratio
        personal_ratio = ratio * 2 if case.flexible else ratio
        employer_part, personal_part = money(base * employer_ratio), money(base * personal_ratio)
        last_paid = case.status_months_ago + 1 if case.status == "sealed" else 1
        total = Decimal(0)
        deposits = []
        for back in range(last_paid, last_paid + case.deposit_months):
            if back in case.gap_months_ago:
                continue
            factor = Decimal("0.5") if back in case.short_months_ago else Decimal(1)
            month_day = _months_ago(self.as_of, back).replace(day=15)
            e, p = money(employer_part * factor), money(personal_part * factor)
            deposits.append(Deposit(month=month_of(month_day), amount=e + p, employer_part=e, personal_part=p,
                                    paid_on=month_day))
            total += e + p
        first = _months_ago(self.as_of, last_paid + case.deposit_months - 1)
        account = Account(person_id=person.id, account_number=f"GJJ{person.id:08d}", status=case.status,
                          status_date=_months_ago(self.as_of, case.status_months_ago) if case.status != "normal"
                          else first, balance=total + Decimal(case.extra_balance), deposit_base=base,
                          employer_ratio=employer_ratio, personal_ratio=personal_ratio,
                          employer="灵活就业人员（个人缴存）" if case.flexible else self.rng.choice(EMPLOYERS),
                          city=case.city, flexible_worker=case.flexible, first_deposit_month=month_of(first))
        self.session.add(account)
        self.session.flush()
        for deposit in deposits:
            deposit.account_id = account.id
        self.session.add_all(deposits)

    def _loan(self, person: Person, spec: dc.LoanSpec) -> None:
        from fund.amortization import equal_installment
        monthly = equal_installment(Decimal(spec.principal), Decimal("2.85"), spec.years * 12).monthly
        paid = min(spec.months_ago, spec.years * 12)
        balance = Decimal(0) if spec.status == "settled" else money(Decimal(spec.principal) * (1 - Decimal(paid) / (spec.years * 12)))
        self.session.add(Loan(person_id=person.id, loan_type=spec.loan_type, status=spec.status,
                              principal=Decimal(spec.principal), balance=balance, monthly_payment=monthly,
                              start_date=_months_ago(self.as_of, spec.months_ago), years=spec.years))

    def _application(self, person: Person, spec: dc.ApplicationSpec) -> None:
        submitted = dt.datetime.combine(self.as_of - dt.timedelta(days=spec.days_ago), dt.time(9, 30))
        names = STEPS.get(spec.kind, WITHDRAWAL_STEPS)
        app = Application(number=f"SQ{self.as_of:%Y}{person.id:04d}{len(self.session.new):04d}",
                          person_id=person.id, kind=spec.kind, submitted_at=submitted, status=spec.status,
                          expected_done=(submitted + dt.timedelta(days=DAYS_TO_DONE.get(spec.kind, 3))).date())
        self.session.add(app)
        self.session.flush()
        for position, name in enumerate(names):
            done = position < spec.steps_done
            self.session.add(ApplicationStep(application_id=app.id, position=position, name=name,
                                             done_at=submitted + dt.timedelta(hours=20 * position) if done else None))


@dataclass(frozen=True)
class DemoPerson:
    key: str
    name: str
    id_number: str
    birth_date: dt.date
    city: str
    openid: Optional[str]
    branch: str


def seed(engine: Engine, seed_value: int = DEFAULT_SEED, as_of: Optional[dt.date] = None) -> list[DemoPerson]:
    """Creates the schema if needed and adds the demo persons; returns them in case order."""
    from fund.clock import china_date, system_clock
    as_of = as_of or china_date(system_clock())
    Base.metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as session:
        seeder = Seeder(session, seed_value, as_of)
        cases = list(dc.CASES) + [_filler(seeder.rng, i) for i in range(1, FILLERS + 1)]
        people = {case.key: seeder.person(case) for case in cases}
        for case in cases:
            if case.spouse_of:
                people[case.key].spouse_id = people[case.spouse_of].id
        session.commit()
        demo = [DemoPerson(case.key, p.name, p.id_number, p.birth_date, case.city, p.wechat_openid, p.branch)
                for case, p in zip(cases, people.values())]
    logger.info("core.seed.done persons=%s as_of=%s", len(demo), as_of)
    return demo


def demo_list(people: list[DemoPerson]) -> str:
    lines = ["# 沙箱演示人员（虚构数据）", "",
             "由 `python -m fund.seed --reset --write-list fund/DEMO_PERSONS.md` 生成。身份证号均为虚构、",
             "符合 GB 11643 校验；验证码写入沙箱短信发件箱（GET /dev/outbox）。微信 openid 可用于 POST /identity/openid。", "",
             "| # | 姓名 | 身份证号 | 出生日期 | 缴存城市 | 微信 openid | 情形 |", "|---|---|---|---|---|---|---|"]
    for n, p in enumerate(people, 1):
        lines.append(f"| {n} | {p.name} | {p.id_number} | {p.birth_date} | {p.city} | "
                     f"{p.openid or ''} | {p.branch} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    from pydantic import ValidationError

    from fund.db import make_engine
    from fund.settings import describe, get_settings

    parser = argparse.ArgumentParser(prog="python -m fund.seed", description="Seed the sandbox core with demo persons")
    parser.add_argument("--database-url", default=None, help="default: CORE_DATABASE_URL")
    parser.add_argument("--reset", action="store_true", help="drop all tables first")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
    parser.add_argument("--write-list", type=Path, default=None, help="write the demo persons' table (Markdown)")
    args = parser.parse_args(argv)
    if args.database_url is None:
        try:
            args.database_url = get_settings().core_database_url
        except ValidationError as exc:
            print(f"settings refused: {describe(exc)}", file=sys.stderr)
            return 2
    engine = make_engine(args.database_url)
    if args.reset:
        Base.metadata.drop_all(engine)
    from fund.db import is_empty
    Base.metadata.create_all(engine)
    if not is_empty(engine):
        print("database already holds persons; use --reset to reseed", file=sys.stderr)
        return 1
    people = seed(engine, args.seed, args.as_of)
    if args.write_list:
        args.write_list.write_text(demo_list(people), encoding="utf-8")
    print(f"seeded {len(people)} demo persons")
    return 0


if __name__ == "__main__":
    sys.exit(main())
