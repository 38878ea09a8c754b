"""Uploaded materials through the core's HTTP API, with real OCR on generated documents
(tests/material_images.py): upload rights, refusals by content before any OCR, the cross-checks
(ID number, lease term, invoice sums), storage by sha256 and the audit chain after each."""
import asyncio
import datetime as dt
import hashlib
import io
import json
import random
import time
import zipfile
from decimal import Decimal

import pytest
from PIL import Image
from sqlalchemy import select

import material_images as mi
from fund import audit, ocr
from fund.db import make_engine
from fund.models import Application, ApplicationMaterial, AuditRecord

REVIEWER = {"Authorization": "Bearer dev-reviewer-token", "X-Staff-Id": "r007"}
LEASE_ITEM = "房屋租赁合同或租赁备案证明"


# --- helpers ----------------------------------------------------------------------------------
def code_of(response):
    return response.json()["detail"]["code"]


def login(client, person):
    started = client.post("/identity/challenges", json={"id_number": person.id_number, "name": person.name,
                                                        "channel_ref": "web:up1"})
    code = client.get("/dev/outbox", params={"limit": 1}).json()["messages"][0]["code"]
    verified = client.post(f"/identity/challenges/{started.json()['challenge_id']}/verify", json={"code": code})
    assert verified.status_code == 200, verified.text
    return verified.json()["person_ref"]


def apply(client, ref, kind, amount, key):
    started = client.post("/applications/sign-challenges", json={"person_ref": ref, "kind": kind, "amount": amount})
    assert started.status_code == 201, started.text
    code = client.get("/dev/outbox", params={"limit": 1}).json()["messages"][0]["code"]
    made = client.post("/applications", json={"person_ref": ref, "kind": kind, "amount": amount, "idempotency_key": key,
                                              "challenge_id": started.json()["challenge_id"], "code": code})
    assert made.status_code == 201, made.text
    return made.json()


def upload_token(client, ref, number):
    issued = client.post(f"/applications/{number}/upload-token", json={"person_ref": ref})
    assert issued.status_code == 200, issued.text
    return issued.json()


def upload(client, number, key, token, data, filename="photo.jpg", mime="image/jpeg"):
    return client.post(f"/applications/{number}/materials/{key}", headers={"X-Upload-Token": token},
                       files={"file": (filename, data, mime)})


def chain_ok(db_url, audit_key):
    engine = make_engine(db_url)
    try:
        report = audit.verify(engine, audit_key)
    finally:
        engine.dispose()
    assert report.ok, report.reason
    return report.records


def material_rows(db_url, number):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            app_id = conn.scalar(select(Application.id).where(Application.number == number))
            return conn.execute(select(ApplicationMaterial).where(ApplicationMaterial.application_id == app_id,
                                                                  ApplicationMaterial.fetched.is_(False))).all()
    finally:
        engine.dispose()


def material_audits(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return [o for (o,) in conn.execute(select(AuditRecord.outcome)
                                               .where(AuditRecord.action == "application.material"))]
    finally:
        engine.dispose()


def with_lease_item(db_url, number):
    """A rent application whose lease must be supplied: the sandbox's cities fetch leases from their
    registration, so the item is added here as a city without lease registration data would list it."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        app_id = conn.scalar(select(Application.id).where(Application.number == number))
        conn.execute(Application.__table__.update().where(Application.id == app_id).values(complete=False))
        conn.execute(ApplicationMaterial.__table__.insert().values(application_id=app_id, name=LEASE_ITEM,
                                                                   fetched=False, summary="待补充"))
    engine.dispose()


@pytest.fixture
def upload_dir(tmp_path):
    return tmp_path / "var" / "uploads"


@pytest.fixture
def client(make_client, upload_dir):
    with make_client(core_upload_dir=upload_dir) as test_client:
        yield test_client


@pytest.fixture
def no_ocr(monkeypatch):
    """For refusals that must come before any OCR: reading a page fails the test."""
    def forbidden(_image):
        raise AssertionError("OCR ran for a file that should have been refused first")
    monkeypatch.setattr(ocr, "read_page", forbidden)


# --- accepted ---------------------------------------------------------------------------------
def test_a_lease_covering_the_claimed_months_is_accepted_stored_and_shown_to_the_reviewer(
        client, demo, clock, db_url, audit_key, upload_dir):
    person = demo["renter_mas"]
    ref = login(client, person)
    app = apply(client, ref, "rent", 3600, "lease-upload-01")       # 2 months of 1,800: Oct and Nov 2026
    with_lease_item(db_url, app["id"])
    rights = upload_token(client, ref, app["id"])
    assert rights["expires_in_s"] == 1800 and [i["name"] for i in rights["items"]] == [LEASE_ITEM]
    key = rights["items"][0]["key"]

    doc = mi.lease(random.Random(11), tenant=person.name, id_number=person.id_number, monthly_rent=Decimal(1800),
                   start=dt.date(2026, 5, 1), end=dt.date(2027, 4, 30), landlord_id=demo["renter_cz"].id_number)
    exif = Image.Exif()
    exif[0x0112] = 6                      # "turn 90° clockwise to view": a phone held upright
    exif[0x010F] = "AnjuTestCam"
    sideways = io.BytesIO()
    doc.image.rotate(90, expand=True).save(sideways, "JPEG", quality=88, exif=exif.tobytes())
    answer = upload(client, app["id"], key, rights["token"], sideways.getvalue())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "accepted" and body["status_name"] == "核验通过", body
    assert body["fields"]["lease_start"] == "2026-05-01" and body["fields"]["months_claimed"] == "2"
    assert body["fields"]["id_number"].count("*") == 11 and body["remaining"] == []
    assert "等待工作人员审核" in body["message"]

    row = material_rows(db_url, app["id"])[0]
    stored = upload_dir / f"{row.file_sha256}.jpg"
    data = stored.read_bytes()
    assert hashlib.sha256(data).hexdigest() == row.file_sha256 and row.file_size == len(data)
    assert "web_widget" not in str(stored.resolve())
    kept = Image.open(io.BytesIO(data))
    assert kept.size == doc.image.size and not kept.getexif()   # turned upright, metadata gone
    assert any(row.file_sha256 in outcome and " accepted " in outcome for outcome in material_audits(db_url))

    again = upload(client, app["id"], key, rights["token"], sideways.getvalue())
    assert again.status_code == 409 and code_of(again) == "material_not_needed"
    mine = client.get(f"/applications/{app['id']}", params={"person_ref": ref}).json()
    assert mine["uploads"][0]["status_name"] == "核验通过" and "sha256" not in mine["uploads"][0]
    clock.advance(minutes=30)                                     # uploaded applications wait for a person
    staff = client.get(f"/review/applications/{app['id']}", headers=REVIEWER).json()
    assert staff["status"] == "submitted"
    item = staff["uploads"][0]
    assert item["status"] == "accepted" and item["sha256"] == row.file_sha256 and item["media_type"] == "image/jpeg"
    copy = client.get(f"/review/applications/{app['id']}/materials/{key}/file", headers=REVIEWER)
    assert copy.status_code == 200 and copy.content == data and copy.headers["content-type"] == "image/jpeg"
    assert client.get(f"/review/applications/{app['id']}/materials/{key}/file").status_code == 403  # core token
    chain_ok(db_url, audit_key)


def test_a_two_page_invoice_pdf_that_adds_up_is_accepted_as_sent(client, demo, db_url, audit_key, upload_dir):
    person = demo["buyer_hukou_city"]
    ref = login(client, person)
    app = apply(client, ref, "purchase", 5000, "invoice-pdf-01")
    rights = upload_token(client, ref, app["id"])
    key = next(i["key"] for i in rights["items"] if "发票" in i["name"])
    rng = random.Random(21)
    bill = mi.invoice(rng, buyer=person.name, id_number=person.id_number,
                      items=[("购房款", Decimal("4210.50")), ("维修基金", Decimal("1893.20")), ("契税", Decimal("640.00"))])
    note = mi.certificate(rng, name=person.name, id_number=person.id_number, title="付款说明",
                          body="以上款项已全额支付，特此说明。", employer="马鞍山安居置业有限公司")
    pdf = mi.pdf([bill.image, note.image])
    answer = upload(client, app["id"], key, rights["token"], pdf, "bill.pdf", "application/pdf")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "accepted", body
    assert body["fields"]["invoice_total"] == "6743.70" == body["fields"]["line_sum"]
    row = next(r for r in material_rows(db_url, app["id"]) if r.file_sha256)
    assert row.pages == 2 and row.media_type == "application/pdf"
    assert (upload_dir / f"{hashlib.sha256(pdf).hexdigest()}.pdf").read_bytes() == pdf
    chain_ok(db_url, audit_key)


# --- refused and sent to a person ----------------------------------------------------------------
def test_another_persons_id_number_is_refused_and_nothing_is_kept(client, demo, db_url, audit_key, upload_dir):
    person, other = demo["left_job_local"], demo["renter_mas"]
    ref = login(client, person)
    app = apply(client, ref, "leave_job", 3000, "wrong-id-0001")
    rights = upload_token(client, ref, app["id"])
    doc = mi.certificate(random.Random(31), name=other.name, id_number=other.id_number)
    data = doc.jpeg(85)
    answer = upload(client, app["id"], rights["items"][0]["key"], rights["token"], data)
    assert answer.status_code == 422 and code_of(answer) == "id_number_mismatch"
    assert "不是您本人的" in answer.json()["detail"]["message"]
    assert not upload_dir.exists() or not any(upload_dir.iterdir())
    row = material_rows(db_url, app["id"])[0]
    assert row.file_sha256 is None and row.check_status is None and row.summary == "待补充"
    refused = [o for o in material_audits(db_url) if "refused id_number_mismatch" in o]
    assert len(refused) == 1 and app["id"] in refused[0] and "sha256=" in refused[0]
    assert other.id_number not in json.dumps(answer.json(), ensure_ascii=False)
    assert upload_token(client, ref, app["id"])["items"]                # the item can still be supplied
    chain_ok(db_url, audit_key)


def test_an_invoice_whose_lines_do_not_add_up_goes_to_a_person(client, demo, db_url, audit_key):
    person = demo["buyer_hukou_city"]
    ref = login(client, person)
    app = apply(client, ref, "purchase", 20000, "bad-sum-00001")
    rights = upload_token(client, ref, app["id"])
    doc = mi.invoice(random.Random(41), buyer=person.name, total=Decimal("90000.00"),
                     items=[("购房款（首付）", Decimal("80000.00")), ("契税", Decimal("3000.00"))])
    answer = upload(client, app["id"], rights["items"][0]["key"], rights["token"], doc.png(), "bill.png", "image/png")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "needs_review" and body["status_name"] == "待人工审核"
    assert any("不符" in note for note in body["notes"]) and "人工审核" in body["message"]
    row = material_rows(db_url, app["id"])[0]
    assert row.check_status == "needs_review" and "不符" in row.check_notes and row.media_type == "image/png"
    staff = client.get(f"/review/applications/{app['id']}", headers=REVIEWER).json()
    assert staff["status"] == "submitted" and "不符" in staff["uploads"][0]["notes"]
    chain_ok(db_url, audit_key)


def test_an_unreadable_photo_goes_to_a_person(client, demo, db_url, audit_key):
    person = demo["retirement_age_no_record"]
    ref = login(client, person)
    app = apply(client, ref, "retirement", 1000, "noise-000001")
    rights = upload_token(client, ref, app["id"])
    answer = upload(client, app["id"], rights["items"][0]["key"], rights["token"], mi.noise(random.Random(51)).jpeg(80))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "needs_review" and "未能识别" in answer.json()["message"]
    assert material_rows(db_url, app["id"])[0].file_sha256
    chain_ok(db_url, audit_key)


# --- rights and files refused before any OCR -----------------------------------------------------
def test_upload_rights_belong_to_the_applicant_the_application_and_half_an_hour(
        client, demo, clock, db_url, audit_key, no_ocr):
    person = demo["left_job_local"]
    ref = login(client, person)
    app = apply(client, ref, "leave_job", 3000, "rights-00001")
    rights = upload_token(client, ref, app["id"])
    key = rights["items"][0]["key"]
    stranger = login(client, demo["buyer_hukou_city"])
    theirs = client.post(f"/applications/{app['id']}/upload-token", json={"person_ref": stranger})
    assert theirs.status_code == 404 and code_of(theirs) == "application_not_found"
    other_app = apply(client, stranger, "purchase", 20000, "rights-00002")
    crossed = upload(client, other_app["id"], key, rights["token"], b"\xff\xd8\xff")
    assert crossed.status_code == 401 and code_of(crossed) == "upload_token_invalid"
    for bad in (None, "", "123.abc", rights["token"][:-2] + "xx"):
        headers = {"X-Upload-Token": bad} if bad is not None else {}
        refused = client.post(f"/applications/{app['id']}/materials/{key}", headers=headers,
                              files={"file": ("a.jpg", b"\xff\xd8\xff", "image/jpeg")})
        assert refused.status_code == 401 and "上传凭证" in refused.json()["detail"]["message"]
    unknown = upload(client, app["id"], "m999999", rights["token"], b"\xff\xd8\xff")
    assert unknown.status_code == 404 and code_of(unknown) == "material_not_found"
    free = login(client, demo["renter_mas"])
    complete = apply(client, free, "rent", 1000, "rights-00003")
    nothing = client.post(f"/applications/{complete['id']}/upload-token", json={"person_ref": free})
    assert nothing.status_code == 409 and code_of(nothing) == "nothing_to_upload"

    clock.advance(seconds=1801)
    expired = upload(client, app["id"], key, rights["token"], b"\xff\xd8\xff")
    assert expired.status_code == 401 and "过期" in expired.json()["detail"]["message"]
    ref = login(client, person)
    assert client.post(f"/applications/{app['id']}/cancel", json={"person_ref": ref}).status_code == 200
    closed = client.post(f"/applications/{app['id']}/upload-token", json={"person_ref": ref})
    assert closed.status_code == 409 and code_of(closed) == "application_closed"
    chain_ok(db_url, audit_key)


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("lease.jpg", b"not really")
    return out.getvalue()


def _png(size, mode="L") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG")
    return out.getvalue()


def test_files_are_refused_by_their_content_size_pixels_and_pages(make_client, demo, db_url, audit_key, upload_dir,
                                                                  no_ocr):
    with make_client(core_upload_dir=upload_dir, core_upload_max_bytes=200_000) as client:
        ref = login(client, demo["left_job_local"])
        app = apply(client, ref, "leave_job", 3000, "files-000001")
        rights = upload_token(client, ref, app["id"])
        key = rights["items"][0]["key"]
        cases = [
            (b"MZ\x90\x00" + b"\x00" * 2000, "lease.png", "image/png", 415, "unsupported_type"),     # an .exe
            (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "a.svg", "image/svg+xml",
             415, "unsupported_type"),
            (_zip(), "lease.jpg", "image/jpeg", 415, "unsupported_type"),
            (b"\xff\xd8\xff" + b"\x00" * 300_000, "big.jpg", "image/jpeg", 413, "file_too_large"),
            (_png((8000, 6000)), "bomb.png", "image/png", 413, "image_too_large"),                      # 48 MP
            (mi.pdf([Image.new("RGB", (200, 280), "white")] * 6), "six.pdf", "application/pdf", 422, "too_many_pages"),
            (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "broken.png", "image/png", 422, "file_unreadable"),
        ]
        for data, name, mime, status, code in cases:
            answer = upload(client, app["id"], key, rights["token"], data, name, mime)
            assert (answer.status_code, code_of(answer)) == (status, code), (name, answer.text)
            assert answer.json()["detail"]["message"]
        raw = client.post(f"/applications/{app['id']}/materials/{key}", content=b"\xff\xd8\xff",
                          headers={"X-Upload-Token": rights["token"], "Content-Type": "image/jpeg"})
        assert raw.status_code == 422 and code_of(raw) == "file_missing"
        assert not upload_dir.exists() or not any(upload_dir.iterdir())
        assert material_rows(db_url, app["id"])[0].file_sha256 is None
        schema = client.get("/openapi.json").json()
        body = schema["paths"]["/applications/{number}/materials/{item_key}"]["post"]["requestBody"]
        assert body["content"]["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    chain_ok(db_url, audit_key)


async def test_ocr_reads_one_page_at_a_time_while_the_event_loop_keeps_serving(monkeypatch):
    running, peak, ticks = 0, 0, 0

    def slow_page(_image):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        time.sleep(0.15)
        running -= 1
        return []

    async def other_requests():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    monkeypatch.setattr(ocr, "read_page", slow_page)
    page = Image.new("RGB", (10, 10))
    ticker = asyncio.create_task(other_requests())
    await asyncio.gather(ocr.read_pages([page, page]), ocr.read_pages([page]), ocr.read_pages([page]))
    ticker.cancel()
    assert peak == 1 and ticks >= 20       # 4 pages × 0.15 s one after another, the loop free meanwhile
