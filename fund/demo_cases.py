"""The demo persons, one per branch the bot must handle (see fund/DEMO_PERSONS.md).

Birth dates are absolute, so ID numbers never change; every other date is relative to the
seeding day (`months_ago`), so the branches hold whenever the sandbox is seeded.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

CITY_REGIONS = {"常州": "320402", "马鞍山": "340503", "芜湖": "340202", "南京": "320106"}


@dataclass(frozen=True)
class HomeSpec:
    city: str
    months_ago: int
    price: int
    area_m2: int = 90


@dataclass(frozen=True)
class LoanSpec:
    loan_type: str = "fund"
    principal: int = 400000
    months_ago: int = 36
    years: int = 20
    status: str = "active"


@dataclass(frozen=True)
class LeaseSpec:
    """A registered lease (房屋租赁登记备案) that started `months_ago` and runs `months`."""
    district: str
    monthly_rent: int
    months_ago: int = 3
    months: int = 12


@dataclass(frozen=True)
class ApplicationSpec:
    kind: str
    days_ago: int
    steps_done: int          # how many steps are done
    status: str = "processing"


@dataclass(frozen=True)
class Case:
    key: str
    branch: str
    born: dt.date
    gender: str = "M"
    city: str = "常州"
    hukou: Optional[str] = None          # default: the account city
    occupation: str = "cadre"
    status: str = "normal"
    status_months_ago: int = 0           # when the account entered its status
    deposit_months: int = 36             # months of deposits (before sealing, if sealed)
    gap_months_ago: tuple[int, ...] = ()  # months with no deposit
    short_months_ago: tuple[int, ...] = ()  # months paid below the due amount
    base: int = 8000
    ratio: str = "0.12"
    flexible: bool = False
    homes: tuple[HomeSpec, ...] = ()
    loans: tuple[LoanSpec, ...] = ()
    applications: tuple[ApplicationSpec, ...] = ()
    wechat: bool = False
    disabled: bool = False
    retired_months_ago: Optional[int] = None
    illness: bool = False
    spouse_of: Optional[str] = None      # key of the spouse's case
    extra_balance: int = 20000
    # Shared data (fund.shared_data) that makes more materials 免提交:
    lease: Optional[LeaseSpec] = None
    purchase_contract: bool = False      # 网签备案 for the newest home
    employment_ended_months_ago: Optional[int] = None
    medical_bills: tuple[int, ...] = ()  # self-paid yuan per bill, settled in the last months


D = dt.date
CASES: tuple[Case, ...] = (
    Case("renter_cz", "租房、无房（常州）：租房提取可办，无租赁备案需上传租赁合同", D(1994, 3, 12), wechat=True,
         applications=(ApplicationSpec("rent", 2, 1),)),
    Case("renter_mas", "租房、无房（马鞍山）、租赁已备案：租房提取可办、材料免提交（可在线申请）", D(1996, 7, 2), "F",
         "马鞍山", lease=LeaseSpec("花山区", 1800)),
    Case("renter_new_job", "新参加工作仅缴存2个月：租房提取不可办（未满3个月）", D(2002, 1, 20), deposit_months=2,
         extra_balance=0),
    Case("renter_gap", "上月断缴：租房提取不可办（不连续）", D(1991, 11, 5), "F", gap_months_ago=(1,)),
    Case("renter_short_paid", "两个月前少缴：租房提取不可办（未足额）", D(1993, 2, 28), short_months_ago=(2,)),
    Case("renter_spouse_owner", "本人无房但配偶在常州有房：租房提取不可办", D(1990, 6, 18), "F",
         spouse_of="owner_married"),
    Case("owner_married", "常州有房（3年前购）且已婚：装修/物业费提取可办，租房不可办", D(1989, 9, 9),
         homes=(HomeSpec("常州", 36, 1600000),), spouse_of="renter_spouse_owner",
         applications=(ApplicationSpec("property_fee", 40, 4, "paid"),)),
    Case("owner_mas", "马鞍山有房（5年前购）：购房提取已过期，装修提取可办", D(1985, 4, 30), "F", "马鞍山",
         homes=(HomeSpec("马鞍山", 60, 900000),)),
    Case("recent_buyer_cz", "常州近期购房（4个月前）：购房提取可办", D(1992, 12, 1),
         homes=(HomeSpec("常州", 4, 1200000),), applications=(ApplicationSpec("purchase", 5, 2),)),
    Case("recent_buyer_small", "马鞍山近期购房、房价低于余额、网签已备案：购房提取以房价为限、材料免提交", D(1980, 5, 16),
         city="马鞍山", homes=(HomeSpec("马鞍山", 2, 60000, 30),), extra_balance=120000, purchase_contract=True),
    Case("buyer_elsewhere", "在南京购房（非缴存地、非户籍地）：购房提取不可办", D(1995, 8, 8), hukou="马鞍山",
         homes=(HomeSpec("南京", 3, 2500000),)),
    Case("buyer_hukou_city", "常州缴存、户籍马鞍山、在马鞍山购房：购房提取可办", D(1993, 10, 10), "F",
         hukou="马鞍山", homes=(HomeSpec("马鞍山", 6, 800000),)),
    Case("second_home", "第二套住房（2个月前购）、网签已备案：购房提取可办、材料免提交，贷款按二套", D(1987, 1, 25),
         homes=(HomeSpec("常州", 96, 900000), HomeSpec("常州", 2, 1500000)), purchase_contract=True),
    Case("third_home", "第三套住房：购房提取不可办", D(1979, 3, 3),
         homes=(HomeSpec("常州", 150, 600000), HomeSpec("常州", 80, 900000), HomeSpec("常州", 1, 1300000))),
    Case("retired_record", "已退休（人社共享数据），年满60：退休提取可办、材料免提交", D(1963, 5, 6),
         status="sealed", status_months_ago=3 * 12, deposit_months=36, retired_months_ago=3 * 12, wechat=True,
         extra_balance=160000, applications=(ApplicationSpec("retirement", 1, 2),)),
    Case("retirement_age_no_record", "已到法定退休年龄（60周岁2个月）但无退休记录：可办，需上传退休证", D(1965, 6, 3),
         status="sealed", status_months_ago=10, deposit_months=36, extra_balance=90000),
    Case("female_worker_before", "女职工（原50岁）未到延迟后的退休年龄：退休提取不可办", D(1978, 3, 14), "F",
         occupation="worker"),
    Case("elderly_72", "72岁老人（已退休多年、微信绑定）：转人工优先", D(1954, 2, 11), "F", "马鞍山", status="sealed",
         status_months_ago=17 * 12, deposit_months=24, retired_months_ago=17 * 12, wechat=True, extra_balance=35000),
    Case("elderly_66_disabled", "66岁残障人士（已退休）：转人工优先", D(1960, 10, 1), "F", "常州", status="sealed",
         status_months_ago=11 * 12, deposit_months=24, retired_months_ago=11 * 12, disabled=True),
    Case("left_job_8m", "离职封存满8个月、劳动关系终止已备案：离职提取可办、材料免提交", D(1990, 2, 14), status="sealed",
         status_months_ago=8, hukou="芜湖", applications=(ApplicationSpec("leave_job", 20, 4, "paid"),),
         employment_ended_months_ago=8),
    Case("left_job_3m", "离职封存3个月：离职提取不可办（未满6个月）", D(1995, 12, 24), "F", "马鞍山",
         status="sealed", status_months_ago=3),
    Case("left_job_local", "本地户籍离职封存满7个月：离职提取可办（本地户籍更长封存期仅在城市规则中配置时适用），"
         "无劳动关系终止备案，需上传证明", D(1988, 7, 7), status="sealed", status_months_ago=7),
    Case("fund_loan", "有在还公积金贷款：偿还贷款提取可办，再次贷款受限", D(1986, 11, 11),
         homes=(HomeSpec("常州", 36, 1100000),), loans=(LoanSpec("fund", 500000, 36, 25),),
         applications=(ApplicationSpec("loan", 1100, 6, "approved"),)),
    Case("commercial_loan", "有在还商业贷款：偿还贷款提取可办", D(1990, 4, 1), "F", "马鞍山",
         homes=(HomeSpec("马鞍山", 24, 1000000),), loans=(LoanSpec("commercial", 700000, 24, 30),)),
    Case("settled_loan", "公积金贷款已结清：偿还贷款提取不可办", D(1978, 8, 19), homes=(HomeSpec("常州", 200, 500000),),
         loans=(LoanSpec("fund", 200000, 130, 10, "settled"),)),
    Case("frozen", "账户冻结：任何提取都不可办", D(1984, 6, 6), status="frozen", status_months_ago=2),
    Case("frozen_mas", "账户冻结（马鞍山）：任何提取都不可办", D(1992, 9, 30), "F", "马鞍山", status="frozen",
         status_months_ago=5),
    Case("flexible_worker", "灵活就业人员（个人缴存）、租赁已备案：租房提取可办、材料免提交", D(1997, 5, 5), flexible=True,
         ratio="0.10", base=5000, wechat=True, lease=LeaseSpec("武进区", 1500, 5)),
    Case("flexible_worker_mas", "灵活就业人员（马鞍山，缴存4个月）", D(1999, 9, 9), "F", "马鞍山", flexible=True,
         ratio="0.05", base=4000, deposit_months=4, extra_balance=0),
    Case("disabled_renter", "残障人士、租房：转人工优先，租房提取可办", D(1983, 1, 9), disabled=True),
    Case("disabled_mas", "残障人士（马鞍山，有房）", D(1975, 12, 12), "F", "马鞍山", disabled=True,
         homes=(HomeSpec("马鞍山", 90, 500000),)),
    Case("illness", "重大疾病（医保共享数据）：大病医疗提取可办", D(1982, 7, 21), "F", "马鞍山", illness=True,
         applications=(ApplicationSpec("illness", 3, 1),)),
    Case("illness_cz", "重大疾病（常州）、医疗费用已结算：大病医疗提取可办、材料免提交，以个人负担费用为限",
         D(1970, 3, 8), illness=True, medical_bills=(12600, 8400)),
    Case("no_data_city", "在芜湖缴存（无城市规则数据）：按全国通用规则", D(1991, 5, 15), city="芜湖"),
    Case("no_data_city_owner", "在芜湖缴存且有房（无城市规则数据）", D(1986, 2, 2), "F", "芜湖",
         homes=(HomeSpec("芜湖", 40, 700000),)),
    Case("loan_term_limited", "55岁男职工：贷款期限受退休年龄限制（约11年）", D(1971, 5, 20), base=12000,
         extra_balance=80000),
    Case("young_high_income", "高收入青年：贷款额度受城市最高额度限制", D(1998, 4, 4), base=30000,
         extra_balance=60000, wechat=True),
    Case("low_balance", "余额较少：贷款额度受余额倍数限制", D(2000, 10, 10), "F", deposit_months=8, base=6000,
         extra_balance=0),
    Case("transfer_in", "异地转入办理中：可查看进度", D(1989, 3, 27), "F", "马鞍山",
         applications=(ApplicationSpec("transfer", 12, 2), ApplicationSpec("rent", 200, 4, "paid"))),
    Case("rejected_app", "申请未通过：可查看进度", D(1994, 6, 30), applications=(ApplicationSpec("purchase", 30, 3, "rejected"),)),
    Case("female_cadre_58", "女干部58岁（延迟后55周岁以上），已到法定退休年龄", D(1968, 1, 19), "F", "常州",
         status="sealed", status_months_ago=2, deposit_months=36),
)
