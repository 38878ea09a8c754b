"""Uploading a material in the citizen widget, in Debian's chromium: the bot's `custom.upload` payload
draws a labelled file input and an 上传 button per item; the file goes through the gateway to the real
core (OCR on a generated document), and the answer is shown as a bot line. Another person's document
is refused with the reason and the item stays open; the citizen's own is accepted and the item closes.
Keyboard only for the upload button; axe (WCAG 2.2 AA) finds nothing in the upload form.

Stand-in stack, started once for this module: redis-server, a scripted Rasa that answers “上传材料” with
the payload the actions send (the token comes from the real core), the real core and the real gateway.
"""
import io
import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI, Request

import material_images as mi
from fund import seed as seeding
from fund.db import make_engine
from stack import Ports
from test_video_panel import axe_violations
from test_video_handoff import wait_js, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/lib/chromium/chromium"
CORE_TOKEN = "dev-core-token"


def scripted_rasa(payload: dict) -> FastAPI:
    app = FastAPI()

    @app.post("/webhooks/gateway/webhook")
    async def webhook(request: Request):
        text = (await request.json())["message"]
        if "上传" in text:
            return [{"text": "申请已提交。还需要您上传材料，可以拍照或选择文件："}, {"custom": {"upload": payload}}]
        return [{"text": f"机器人回答：{text}"}]

    @app.get("/conversations/{sender}/tracker")
    async def tracker(sender: str):
        return {"sender_id": sender, "events": []}

    @app.get("/status")
    async def status():
        return {"model_file": "fake.tar.gz"}

    return app


def apply_with_upload(core: str, person) -> dict:
    """A leave_job application that needs 解除或终止劳动关系证明, and its upload rights, from the real core."""
    auth = {"Authorization": f"Bearer {CORE_TOKEN}"}
    with httpx.Client(base_url=core, headers=auth, timeout=30) as client:
        def code() -> str:
            return client.get("/dev/outbox", params={"limit": 1}).json()["messages"][0]["code"]
        started = client.post("/identity/challenges", json={"id_number": person.id_number, "name": person.name,
                                                            "channel_ref": "web:browser"}).json()
        ref = client.post(f"/identity/challenges/{started['challenge_id']}/verify",
                          json={"code": code()}).json()["person_ref"]
        sign = client.post("/applications/sign-challenges", json={"person_ref": ref, "kind": "leave_job",
                                                                  "amount": 3000}).json()
        app = client.post("/applications", json={"person_ref": ref, "kind": "leave_job", "amount": 3000,
                                                 "idempotency_key": "browser-upload-01",
                                                 "challenge_id": sign["challenge_id"], "code": code()}).json()
        rights = client.post(f"/applications/{app['id']}/upload-token", json={"person_ref": ref}).json()
    return {"application_id": app["id"], **rights}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not (shutil.which("redis-server") and Path(CHROMIUM).exists()):
        pytest.skip("needs redis-server and chromium")
    tmp = tmp_path_factory.mktemp("uploads")
    ports = Ports.free()
    database = f"sqlite:///{tmp / 'core.db'}"
    engine = make_engine(database)
    people = {p.key: p for p in seeding.seed(engine)}
    engine.dispose()
    procs, logs = [], []
    procs.append(subprocess.Popen(["redis-server", "--port", str(ports.redis), "--bind", "127.0.0.1", "--dir", str(tmp),
                                   "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))
    payload: dict = {}
    rasa = uvicorn.Server(uvicorn.Config(scripted_rasa(payload), host="127.0.0.1", port=ports.rasa,
                                         log_level="warning"))
    threading.Thread(target=rasa.run, daemon=True).start()
    env = dict(os.environ, ANJU_ENV="test", PYTHONPATH=str(ROOT), REDIS_URL=f"redis://127.0.0.1:{ports.redis}/0",
               RASA_URL=f"http://127.0.0.1:{ports.rasa}", CORE_URL=f"http://127.0.0.1:{ports.core}",
               CORE_DATABASE_URL=database, CORE_UPLOAD_DIR=str(tmp / "uploads"), CORE_API_TOKEN=CORE_TOKEN)
    for name, app, port in (("core", "fund.api:create_app", ports.core),
                            ("gateway", "gateway.app:create_app", ports.gateway)):
        log = open(tmp / f"{name}.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1",
                                       "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        wait_until(redis.Redis(port=ports.redis, socket_timeout=2).ping, what="redis")
        wait_until(lambda: rasa.started, what="scripted rasa")
        for port in (ports.core, ports.gateway):
            wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200,
                       timeout=60, what=f"port {port}")
        payload.update(apply_with_upload(f"http://127.0.0.1:{ports.core}", people["left_job_local"]))
        yield {"url": f"http://127.0.0.1:{ports.gateway}", "people": people, "payload": payload}
    finally:
        rasa.should_exit = True
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()
        for name in ("core", "gateway"):
            print(name, (tmp / f"{name}.log").read_text()[-2000:])


def jpeg(doc) -> bytes:
    out = io.BytesIO()
    doc.image.convert("RGB").save(out, "JPEG", quality=88)
    return out.getvalue()


def test_the_citizen_uploads_a_material_from_the_chat_with_the_keyboard(stack, browser):
    person, stranger = stack["people"]["left_job_local"], stack["people"]["renter_mas"]
    page = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    try:
        page.goto(stack["url"] + "/")
        page.wait_for_selector("text=已连接", timeout=15000)
        page.get_by_label("输入您的问题").fill("上传材料")
        page.get_by_role("button", name="发送").click()
        file_input = page.get_by_label("解除或终止劳动关系证明", exact=True)
        file_input.wait_for(timeout=15000)
        assert file_input.get_attribute("accept") == "image/jpeg,image/png,application/pdf"
        assert file_input.get_attribute("capture") == "environment"
        assert axe_violations(page) == []

        wrong = mi.certificate(random.Random(3), name=stranger.name, id_number=stranger.id_number)
        file_input.set_input_files({"name": "other.jpg", "mimeType": "image/jpeg", "buffer": jpeg(wrong)})
        send = page.get_by_role("button", name="上传解除或终止劳动关系证明")
        send.focus()
        page.keyboard.press("Enter")
        page.wait_for_selector(".msg--bot >> text=不是您本人的", timeout=60000)
        assert send.is_enabled() and file_input.is_enabled()          # refused: the item stays open

        mine = mi.certificate(random.Random(4), name=person.name, id_number=person.id_number)
        file_input.set_input_files({"name": "mine.jpg", "mimeType": "image/jpeg", "buffer": jpeg(mine)})
        send.focus()
        page.keyboard.press("Enter")
        page.wait_for_selector(".msg--bot >> text=核验通过", timeout=60000)
        wait_js(page, "document.querySelector('.uploads__send').disabled === true")
        assert file_input.is_disabled() and page.locator(".uploads__state").inner_text() == "核验通过"
        assert axe_violations(page) == []
    finally:
        page.close()
