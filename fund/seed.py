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
from fund.models import (Account, Application, ApplicationStep, BankCard, Base, Deposit, EmploymentRecord,
                         HomeOwnership, LeaseRegistration, Loan, MarriageRegistration, MedicalBill, Person,
                         PurchaseContract)
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
BANKS = (("中国工商银行", "621226"), ("中国建设银行", "621700"), ("中国农业银行", "622848"),
         ("中国银行", "621661"), ("江苏银行", "622173"), ("徽商银行", "622651"))
HOSPITALS = {"常州": "常州市第一人民医院（沙箱）", "马鞍山": "马鞍山市人民医院（沙箱）"}
DISTRICT_CODES = {"常州": "3204", "马鞍山": "3405", "芜湖": "3402", "南京": "3201"}


def luhn_digit(digits: str) -> str:
    """The check digit bank card numbers end with (ISO/IEC 7812)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return str((10 - total % 10) % 10)


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
        self.session, self.as_of, self.seed = session, as_of, seed
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
        # Its own generator: adding shared data never changes the names and ID numbers above.
        own = random.Random(f"{self.seed}:{case.key}")
        self._bank_card(person, own)
        self._shared_data(person, case, own)
        return person

    def _bank_card(self, person: Person, rng: random.Random) -> None:
        bank, prefix = rng.choice(BANKS)
        body = prefix + "".join(rng.choice("0123456789") for _ in range(12))
        self.session.add(BankCard(person_id=person.id, bank_name=bank, card_number=body + luhn_digit(body)))

    def _shared_data(self, person: Person, case: dc.Case, rng: random.Random) -> None:
        """The government data exchange's records for this person (fund.shared_data)."""
        if case.purchase_contract and case.homes:
            home = min(case.homes, key=lambda h: h.months_ago)
            self.session.add(PurchaseContract(
                person_id=person.id, contract_number=f"WQ{rng.randrange(10 ** 10):010d}", city=home.city,
                signed_on=_months_ago(self.as_of, home.months_ago + 1), price=Decimal(home.price),
                paid=money(Decimal(home.price) * Decimal("0.3"))))
        if case.lease is not None:
            start = _months_ago(self.as_of, case.lease.months_ago)
            self.session.add(LeaseRegistration(
                person_id=person.id, record_number=f"ZL{DISTRICT_CODES.get(case.city, '0000')}{rng.randrange(10 ** 8):08d}",
                city=case.city, district=case.lease.district, start_on=start,
                end_on=add_months(start, case.lease.months) - dt.timedelta(days=1),
                monthly_rent=Decimal(case.lease.monthly_rent)))
        if case.employment_ended_months_ago is not None:
            self.session.add(EmploymentRecord(
                person_id=person.id, employer=person.account.employer,
                started_on=_months_ago(self.as_of, case.employment_ended_months_ago + case.deposit_months),
                ended_on=_months_ago(self.as_of, case.employment_ended_months_ago), end_reason="劳动合同期满终止"))
        for n, self_paid in enumerate(case.medical_bills, 1):
            self.session.add(MedicalBill(
                person_id=person.id, hospital=HOSPITALS.get(case.city, "定点医院（沙箱）"),
                settled_on=_months_ago(self.as_of, 2 * n), total=Decimal(self_paid * 3), self_paid=Decimal(self_paid)))

    def marriage(self, person: Person, spouse: Person) -> None:
        registered = _months_ago(self.as_of, 60)
        for one, other in ((person, spouse), (spouse, person)):
            self.session.add(MarriageRegistration(person_id=one.id, spouse_id=other.id, registered_on=registered,
                                                  status="married"))

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
                if case.key < case.spouse_of:   # one registration per couple, for both
                    seeder.marriage(people[case.key], people[case.spouse_of])
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
    return "\n".join(lines) + "\n" + ONLINE_APPLICATIONS


ONLINE_APPLICATIONS = """
## 在线提取申请（共享数据与收款银行卡）

每位演示人员都登记了一张虚构的收款银行卡（按卡号校验位生成，只以 `6217 **** **** 1234` 形式显示）。
沙箱的共享数据表代替政务数据共享平台：不动产登记、婚姻登记（民政）、商品房网签备案、房屋租赁登记备案（住建）、
劳动关系终止备案（人社）、医疗费用结算（医保）。下列人员的提取材料全部可从共享数据获取（免提交），
可在线申请、由沙箱规则自动审批并到账：

| 情形 | 提取类型 | 从共享数据获取的关键材料 |
|---|---|---|
| renter_mas（#2） | 租房提取 | 租赁登记备案（月租金1,800元，额度上限为12个月租金） |
| flexible_worker（#28） | 租房提取 | 租赁登记备案（月租金1,500元） |
| recent_buyer_small（#10）、second_home（#13） | 购房提取 | 商品房网签备案 |
| retired_record（#15） | 退休提取 | 退休信息（人社）；已有一笔办理中的退休提取，重复申请会被拒绝 |
| left_job_8m（#20） | 离职提取 | 劳动关系终止备案 |
| illness_cz（#33） | 大病医疗提取 | 重大疾病记录与医疗费用结算（个人负担合计21,000元，为额度上限） |
| fund_loan（#23）、commercial_loan（#24） | 偿还贷款提取 | 贷款信息 |

缺少某项共享数据、需上传材料的人员（申请可以提交，但等待工作人员审核，不会自动审批）：
renter_cz（#1，无租赁备案；且已有一笔办理中的租房提取）、left_job_local（#22，无劳动关系终止备案）、
illness（#32，无医疗费用结算；已有办理中的申请）、buyer_hukou_city（#12，无网签备案）、
retirement_age_no_record（#16，无退休记录）。租房但无租赁备案的人员（如 disabled_renter，#30）
没有可核定的租房提取额度，暂不能在线申请。
"""


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
