"""Cross-checks of an uploaded material's OCR text against the application (pure functions).

Text is normalised first (NFKC turns full-width digits, colons and ￥ into their plain forms;
spaces go). Then: an 18-character ID number on the document must be the applicant's; a document
that bears only other people's is refused (it is not theirs). Beside the applicant's own, another
ID number is accepted only on a counterparty's line (a lease's landlord, 甲方/出租人), otherwise a
person looks; a lease must show its term and monthly rent, and the term must cover the
months the amount claims (amount ÷ rent, rounded up, counting back from the submission month);
an invoice's line amounts must add up to its 合计 / 价税合计 (±0.01) and the total must reach the
amount applied for; every document must name the applicant (name or ID number). Anything that
cannot be read, or does not match, goes to a person (needs_review), never silently through.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Iterable, Optional

import cn2an

from fund.id_numbers import InvalidIdNumber, validate
from fund.privacy import mask_id_number, mask_name

MIN_MEAN_SCORE = 0.80      # below this the page is too unclear to trust
MIN_FIELD_SCORE = 0.85     # a line carrying a key field must be read at least this surely
MIN_CHARS = 8
CENT = Decimal("0.01")

ID_CANDIDATE = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9X])")
DATE = re.compile(r"(\d{4})[年.\-/](\d{1,2})[月.\-/](\d{1,2})日?")
MONEY = re.compile(r"(?<![\d.,])(¥)?(\d{1,3}(?:,\d{3})+|\d+)(\.\d{1,2})?(元)?")
CAPITAL = re.compile(r"([零壹贰叁肆伍陆柒捌玖拾佰仟万亿]+)[元圆]((?:[零壹贰叁肆伍陆柒捌玖]角)?(?:[零壹贰叁肆伍陆柒捌玖]分)?)整?")
COUNTERPARTY = ("甲方", "出租", "房东", "出卖人", "卖方", "销售方")   # the other party to a lease or sale
NOT_LINE_ITEMS = ("合计", "总计", "号码", "日期", "身份证", "税号", "电话", "代码", "账号", "大写")


@dataclass(frozen=True)
class ReadLine:
    text: str       # normalised
    score: float


@dataclass
class Verdict:
    status: str                       # accepted / needs_review / refused
    notes: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)   # masked, for the citizen and the reviewer
    code: Optional[str] = None        # refused: why (id_number_mismatch)


@dataclass(frozen=True)
class Claim:
    """What the document is checked against."""

    id_number: str
    name: str
    amount: Decimal
    submitted_on: dt.date    # China date of the submission


def normalize(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).replace("：", ":")


def item_kind(name: str) -> str:
    if "租赁" in name:
        return "lease"
    if any(word in name for word in ("发票", "凭证", "收据")):
        return "invoice"
    return "other"


def id_numbers(text: str) -> tuple[list[str], int]:
    """(well-formed ID numbers with a valid checksum, count of 18-character candidates that fail it)."""
    valid, broken = [], 0
    for candidate in ID_CANDIDATE.findall(text.upper()):
        try:
            valid.append(validate(candidate))
        except InvalidIdNumber:
            broken += 1
    return list(dict.fromkeys(valid)), broken


def dates(text: str) -> list[dt.date]:
    found = []
    for year, month, day in DATE.findall(text):
        try:
            found.append(dt.date(int(year), int(month), int(day)))
        except ValueError:
            continue
    return found


def amounts(text: str, cents_only: bool = False) -> list[Decimal]:
    """Money in a line: ¥3,600.00 / 3600元 / 3600.00, and 大写 (叁仟陆佰元整); dates are skipped.
    cents_only: only figures written with decimals (line items on an invoice)."""
    text = DATE.sub(" ", text)
    found = []
    for sign, whole, cents, unit in MONEY.findall(text):
        if cents_only and not cents:
            continue
        if not (sign or cents or unit):
            continue
        found.append(Decimal(whole.replace(",", "") + cents))
    for whole, small in CAPITAL.findall(text):
        try:
            value = Decimal(str(cn2an.cn2an(whole, "normal")))
        except (ValueError, KeyError, InvalidOperation):
            continue
        jiao = re.search(r"(.)角", small)
        fen = re.search(r"(.)分", small)
        for match, unit in ((jiao, Decimal("0.1")), (fen, CENT)):
            if match:
                value += Decimal(str(cn2an.cn2an(match.group(1), "normal"))) * unit
        found.append(value)
    return found


def months_back(submitted_on: dt.date, count: int) -> tuple[dt.date, dt.date]:
    """First day of the earliest claimed month and last day of the submission month."""
    index = submitted_on.year * 12 + submitted_on.month - 1 - (count - 1)
    first = dt.date(index // 12, index % 12 + 1, 1)
    following = dt.date(submitted_on.year + submitted_on.month // 12, submitted_on.month % 12 + 1, 1)
    return first, following - dt.timedelta(days=1)


def _line_with(lines: list[ReadLine], words: Iterable[str], without: Iterable[str] = ()) -> list[ReadLine]:
    words, without = tuple(words), tuple(without)
    return [line for line in lines if any(w in line.text for w in words) and not any(w in line.text for w in without)]


def _unsure(verdict: Verdict, lines: list[ReadLine], what: str) -> None:
    if any(line.score < MIN_FIELD_SCORE for line in lines):
        verdict.notes.append(f"{what}识别不够清晰，需人工核对")


def check(item_name: str, pages: list[list[ReadLine]], claim: Claim) -> Verdict:
    lines = [line for page in pages for line in page]
    text = "\n".join(line.text for line in lines)
    verdict = Verdict("needs_review")
    chars = sum(len(line.text) for line in lines)
    if chars < MIN_CHARS:
        verdict.notes.append("未能识别出文字，可能是照片模糊、过暗或拍错了材料")
        return verdict
    mean = sum(line.score * len(line.text) for line in lines) / chars
    if mean < MIN_MEAN_SCORE:
        verdict.notes.append("图片不够清晰，识别可信度低")

    found, broken = id_numbers(text)
    own = claim.id_number in found
    others = [number for number in found if number != claim.id_number]
    if others and not own:
        verdict.status, verdict.code = "refused", "id_number_mismatch"
        verdict.fields["id_number"] = mask_id_number(others[0])
        verdict.notes.append("材料上的身份证号不是申请人本人的")
        return verdict
    if own:
        verdict.fields["id_number"] = mask_id_number(claim.id_number)
    # Beside the applicant's own: a lease names its landlord, anything else is for a person to look at.
    unexplained = [n for n in others if not any(n in line.text and any(w in line.text for w in COUNTERPARTY)
                                                for line in lines)]
    if unexplained:
        verdict.notes.append("材料上还有其他人的身份证号，需人工核对")
    if broken:
        verdict.notes.append("材料上的身份证号识别不完整，需人工核对")
    named = claim.name in text
    if named:
        verdict.fields["name"] = mask_name(claim.name)
    if not found and not named:
        verdict.notes.append("未在材料上识别到申请人的姓名或身份证号")

    kind = item_kind(item_name)
    if kind == "lease":
        _check_lease(lines, claim, verdict)
    elif kind == "invoice":
        _check_invoice(lines, claim, verdict)
    if not verdict.notes:
        verdict.status = "accepted"
    return verdict


def _check_lease(lines: list[ReadLine], claim: Claim, verdict: Verdict) -> None:
    term_lines = [line for line in _line_with(lines, ("期限", "租期", "起至", "至")) if len(dates(line.text)) >= 2]
    if not term_lines:   # the term may be split over lines: 自…起 / 至…止
        joined = "".join(line.text for line in _line_with(lines, ("自", "起", "至", "止"), ("签订", "签署")))
        term_lines = [ReadLine(joined, min((l.score for l in lines), default=0))] if len(dates(joined)) >= 2 else []
    rent_lines = _line_with(lines, ("租金",), ("押金",))
    rents = [a for line in rent_lines for a in amounts(line.text) if a > 0]
    if not term_lines:
        verdict.notes.append("未能识别租赁期限（起止日期）")
    if not rents:
        verdict.notes.append("未能识别月租金")
    if not term_lines or not rents:
        return
    start, end = dates(term_lines[0].text)[:2]
    rent = rents[0] / 12 if "年租金" in rent_lines[0].text else rents[0]
    _unsure(verdict, term_lines[:1] + rent_lines[:1], "租赁期限或租金")
    months = max(1, math.ceil(claim.amount / rent))
    first, last = months_back(claim.submitted_on, months)
    verdict.fields.update(lease_start=start.isoformat(), lease_end=end.isoformat(),
                          monthly_rent=f"{rent:.2f}", months_claimed=str(months))
    if end < start:
        verdict.notes.append("租赁期限的结束日期早于开始日期")
    elif start > first or end < last:
        verdict.notes.append(f"租赁期限{start:%Y-%m-%d}至{end:%Y-%m-%d}未覆盖申请的{months}个月"
                             f"（{first:%Y-%m}至{last:%Y-%m}）")


def _check_invoice(lines: list[ReadLine], claim: Claim, verdict: Verdict) -> None:
    total_lines = _line_with(lines, ("价税合计",)) or _line_with(lines, ("合计", "总计"))
    totals = [a for line in total_lines for a in amounts(line.text)]
    items = [a for line in lines if not any(w in line.text for w in NOT_LINE_ITEMS)
             for a in amounts(line.text, cents_only=True)]
    if not totals:
        verdict.notes.append("未能识别发票合计金额")
        return
    total = totals[0]
    verdict.fields["invoice_total"] = f"{total:.2f}"
    _unsure(verdict, total_lines[:1], "合计金额")
    if not items:
        verdict.notes.append("未能识别发票明细金额")
    else:
        line_sum = sum(items, Decimal(0))
        verdict.fields["line_sum"] = f"{line_sum:.2f}"
        if abs(line_sum - total) > CENT:
            verdict.notes.append(f"发票明细金额之和{line_sum:,.2f}元与合计{total:,.2f}元不符")
    if total < claim.amount:
        verdict.notes.append(f"发票合计{total:,.2f}元低于申请提取金额{claim.amount:,.2f}元")
