"""Online withdrawal submission figures: dialogue turns of a submission (--section turns, on a
stack this script starts) and OCR of uploaded materials (--section ocr, in-process).

Turns: the seven demo persons whose withdrawal is complete from shared data verify themselves
one after another and apply through the gateway's chat API; timed are the three submission
turns: the offer (core offer read), the amount (core checks + signing code sent) and the code
(signature, submission, audit records in one core transaction).

OCR: N varied synthetic documents (tests/material_images.py: lease contracts, invoices and
certificates in the Noto CJK fonts, varied layout, font, size, ±3° rotation, noise and JPEG
quality) go through what an upload goes through in the core: decode and re-encode
(fund.materials.decode), OCR one page at a time (fund.ocr), the cross-checks
(fund.material_checks). Printed: seconds per page (re-encode, OCR), the character error rate of
the key fields (ID number, dates, rent, amounts, name: the printed value against the closest
stretch of the OCR text, by edit distance), how often the checks parsed each field exactly, and
how many of the (correct) documents the checks accepted without a person. One two-page PDF is
included (pdfium renders its pages at 150 dpi). Another section (dialogue turns) can be added
as a function beside ocr_figures() and a flag in main().

    PYTHONPATH=. <app venv>/bin/python bench/withdrawal_submission.py [--documents 12] [--seed 7]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import os
import platform
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import material_images as mi  # noqa: E402
from fund import ocr  # noqa: E402
from fund.material_checks import Claim, ReadLine, check, normalize  # noqa: E402
from fund.materials import decode  # noqa: E402

import httpx  # noqa: E402
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "scripts"))
from chat_load import percentile  # noqa: E402
from citizen import LIFTED_LIMITS, BenchCitizen  # noqa: E402
from stack import Ports, stack_from_env  # noqa: E402

PERSON_ID, PERSON_NAME = "320402199403120454", "韦娜伟"   # a demo person (fund/DEMO_PERSONS.md #1)
ITEM_NAMES = {"lease": "房屋租赁合同或租赁备案证明", "invoice": "个人负担医疗费用发票", "certificate": "解除或终止劳动关系证明"}
PARSED = {"lease": {"lease_start": "start", "lease_end": "end"}, "invoice": {"invoice_total": "total"}}


def fuzzy_distance(needle: str, haystack: str) -> int:
    """Edit distance between `needle` and the closest substring of `haystack` (Sellers)."""
    previous = [0] * (len(haystack) + 1)
    for i, ch in enumerate(needle, 1):
        current = [i] + [0] * len(haystack)
        for j, other in enumerate(haystack, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ch != other))
        previous = current
    return min(previous)


def claim_for(doc: mi.Document) -> Claim:
    """A claim each correct document should pass: two months of rent, or less than the invoice."""
    if doc.kind == "lease":
        start = dt.date.fromisoformat(_iso(doc.truth["start"]))
        rent = Decimal(normalize(doc.truth["monthly_rent"]).strip("¥人民币元").replace(",", ""))
        return Claim(PERSON_ID, PERSON_NAME, rent * 2, start + dt.timedelta(days=95))
    if doc.kind == "invoice":
        return Claim(PERSON_ID, PERSON_NAME, Decimal(doc.truth["total"].replace(",", "")) - 1, dt.date(2026, 11, 23))
    return Claim(PERSON_ID, PERSON_NAME, Decimal(1000), dt.date(2026, 11, 23))


def _iso(text: str) -> str:
    for sep in ("年", "月", "."):
        text = text.replace(sep, "-")
    year, month, day = text.rstrip("日-").split("-")
    return f"{int(year):04d}-{int(month):02d}-{int(day):02d}"


def ocr_figures(documents: int = 12, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    docs = mi.varied(rng, documents, PERSON_ID, PERSON_NAME)
    pdf_pages = [mi.certificate(rng, name=PERSON_NAME, id_number=PERSON_ID).image,
                 mi.certificate(rng, name=PERSON_NAME, id_number=PERSON_ID, title="退休证明").image]
    started = time.perf_counter()
    ocr.engine()
    load_s = time.perf_counter() - started
    encode_s, page_s, kinds = [], [], {}
    errors = chars = 0
    parsed_ok = parsed_all = accepted = 0
    rows = []
    files = [(doc, doc.jpeg(rng=rng) if i % 2 == 0 else doc.png()) for i, doc in enumerate(docs)]
    files.append((mi.Document("certificate", pdf_pages[0], {"id_number": PERSON_ID, "name": PERSON_NAME}),
                  mi.pdf(pdf_pages)))
    for doc, data in files:
        t0 = time.perf_counter()
        decoded = decode(data, 10 * 1024 * 1024)
        encode_s.append(time.perf_counter() - t0)
        pages = []
        for image in decoded.images:
            t0 = time.perf_counter()
            pages.append(ocr.read_page(image))
            page_s.append(time.perf_counter() - t0)
            kinds.setdefault(decoded.media_type, []).append(page_s[-1])
        text = normalize("".join(line.text for page in pages for line in page))
        doc_errors = doc_chars = 0
        for value in doc.truth.values():
            value = normalize(value)
            doc_errors += fuzzy_distance(value, text)
            doc_chars += len(value)
        errors, chars = errors + doc_errors, chars + doc_chars
        verdict = check(ITEM_NAMES[doc.kind], [[ReadLine(normalize(line.text), line.score) for line in page]
                                               for page in pages], claim_for(doc))
        for field, truth_key in PARSED.get(doc.kind, {}).items():
            parsed_all += 1
            truth = doc.truth[truth_key]
            expected = _iso(truth) if field.startswith("lease") else truth.replace(",", "")
            parsed_ok += verdict.fields.get(field) == expected
        accepted += verdict.status == "accepted"
        rows.append(f"  {doc.kind:<11} {decoded.media_type:<15} pages={len(pages)}  "
                    f"ocr={sum(page_s[-len(pages):]):.2f}s  field CER={doc_errors / max(1, doc_chars):.3f}  "
                    f"{verdict.status}{'' if verdict.status == 'accepted' else ' (' + '；'.join(verdict.notes) + ')'}")
    ordered = sorted(page_s)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    lines = [f"OCR (rapidocr-onnxruntime, one engine, one page at a time): {len(files)} documents, {len(page_s)} pages",
             f"engine load: {load_s:.2f} s (once per process)",
             f"seconds per page: median {statistics.median(page_s):.2f}, p90 {p90:.2f}, max {max(page_s):.2f}",
             *[f"  {kind}: median {statistics.median(v):.2f} s over {len(v)} pages"
               for kind, v in sorted(kinds.items())],
             f"decode + re-encode (Pillow / pdfium render at 150 dpi): median "
             f"{statistics.median(encode_s) * 1000:.0f} ms a file, max {max(encode_s) * 1000:.0f} ms",
             f"key-field character error rate: {errors / max(1, chars):.4f} ({errors} of {chars} characters)",
             f"fields parsed exactly by the checks (lease dates, invoice totals): {parsed_ok}/{parsed_all}",
             f"correct documents accepted without a person: {accepted}/{len(files)}",
             "per document:", *rows]
    return lines


# ---- dialogue turns of the submission ------------------------------------------------------

# Demo persons whose withdrawal is complete from shared data (fund/DEMO_PERSONS.md "材料免提交"; #15 is
# left out: a seeded retirement application is open, so a second one is refused, as it should be):
# (ID number, name, the pre-check question, the kind's words for "在线申请…").
COMPLETE_PERSONS = [
    ("340503199607026801", "水悦华", "我租房能提取多少", "在线申请租房提取"),
    ("340503198005166634", "柳达", "我买房了能提多少", "在线申请购房提取"),
    ("32040219870125435X", "邹刚欣", "我买房了能提多少", "在线申请购房提取"),
    ("32040219861111015X", "严妍邦", "我想用公积金还房贷能取多少", "在线申请还贷提取"),
    ("340202199002141353", "郑涵怡", "我离职了能取多少", "在线申请离职提取"),
    ("32040219970505339X", "尤红清", "我租房能提取多少", "在线申请租房提取"),
    ("320402197003087932", "冯卓", "我得了大病能提多少", "在线申请大病提取"),
]
STEPS = ("offer", "amount+code sent", "sign+submit")


async def _apply(client, core, person, timings: dict, errors: list) -> None:
    id_number, name, question, apply_text = person
    citizen = BenchCitizen()
    for text in (question, id_number, name):
        await citizen.say(client, text)
    code = (await core.get("/dev/outbox", params={"limit": 1})).json()["messages"][0]["code"]
    await citizen.say(client, code)
    for step, text in zip(STEPS, (apply_text, "全部", None)):
        if text is None:
            text = (await core.get("/dev/outbox", params={"limit": 1})).json()["messages"][0]["code"]
        started = time.perf_counter()
        resp = await citizen.say(client, text)
        elapsed = (time.perf_counter() - started) * 1000
        if resp.status_code != 200:
            errors.append(f"{step}: {resp.status_code}")
            return
        timings[step].append(elapsed)
    said = " ".join(m.get("text") or "" for m in resp.json().get("messages", []))
    if "申请已提交" not in said:
        errors.append(f"{name[0]}*: not submitted: {said[:80]}")


async def turn_figures(stack, report) -> None:
    """One citizen at a time (the outbox's latest code must be theirs): the three turns of a submission."""
    timings = {step: [] for step in STEPS}
    errors: list = []
    core = httpx.AsyncClient(base_url=stack.urls["core"], timeout=30,
                             headers={"Authorization": f"Bearer {stack.core_token}"})
    async with httpx.AsyncClient(base_url=stack.urls["gateway"], timeout=60) as client, core:
        for person in COMPLETE_PERSONS:
            await _apply(client, core, person, timings, errors)
    for step in STEPS:
        values = timings[step]
        report(f"turn {step:<18} n={len(values):>2}  p50={percentile(values, 50):6.0f} ms  "
               f"p95={percentile(values, 95):6.0f} ms  max={max(values or [0]):6.0f} ms")
    report(f"submitted {len(COMPLETE_PERSONS) - len(errors)} of {len(COMPLETE_PERSONS)}; errors: {errors or 'none'}")


def run_turns() -> list[str]:
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp:
        stack = stack_from_env(Path(tmp), Ports.free())
        stack.env_overrides.update(LIFTED_LIMITS)
        try:
            stack.start()
            asyncio.run(turn_figures(stack, lines.append))
        finally:
            stack.stop()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=12, help="synthetic documents to read (default 12)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--section", choices=("ocr", "turns"), default="ocr")
    parser.add_argument("--out", help="default bench/results/withdrawal_submission_<section>.txt")
    args = parser.parse_args()
    args.out = args.out or str(ROOT / "bench" / "results" / f"withdrawal_submission_{args.section}.txt")
    header = (f"withdrawal_submission ({args.section})  {dt.datetime.now():%Y-%m-%d %H:%M}  machine: "
              f"{os.cpu_count()} cores, {platform.machine()}, load {os.getloadavg()[0]:.1f}")
    if args.section == "ocr":
        lines = [header + f"  documents={args.documents} seed={args.seed}", *ocr_figures(args.documents, args.seed)]
    else:
        lines = [header + f"  (rate limits lifted: {LIFTED_LIMITS})", *run_turns()]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
