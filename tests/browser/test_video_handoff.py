"""End to end in Chromium: a citizen asks for video, staff log in and accept, the citizen agrees to the
recording, both see and hear each other through the gateway's media server, staff end with an internal
note and a summary (the citizen reads only the summary), the bot answers again, and the recording is a
valid file whose SHA-256 is in the audit log (parked in redis, as no core runs here).

Starts its own redis-server, a fake Rasa (scripted replies, real REST shapes) and the gateway.
Run inside a private network namespace: unshare -n sh -c 'ip link set lo up; pytest tests/browser/test_video_handoff.py'
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyotp
import pytest
import redis
import uvicorn
from fastapi import FastAPI, Request

from gateway.settings import DEV_STAFF_ACCOUNTS
from stack import Ports

pytestmark = [pytest.mark.integration, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/lib/chromium/chromium"


def wait_until(check, timeout=20.0, what="service"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not come up in {timeout} s")


def fake_rasa_app(events: dict) -> FastAPI:
    """Rasa's REST channel and tracker API, scripted: asking for a person starts a handoff."""
    app = FastAPI()

    @app.post("/webhooks/gateway/webhook")
    async def webhook(request: Request):
        body = await request.json()
        text, sender = body["message"], body["sender"]
        if "人工" in text or "视频" in text:
            reply = [{"text": "好的，为您转接工作人员视频服务。"},
                     {"custom": {"type": "handoff_start", "priority": False, "reason": "request"}}]
        else:
            reply = [{"text": f"机器人回答：{text}"}]
        log = events.setdefault(sender, [])
        log.append({"event": "user", "text": text, "parse_data": {"intent": {"name": "faq"}}})
        log.extend({"event": "bot", "text": m["text"]} for m in reply if "text" in m)
        # Slots as the real bot sets them: staff must read them in words, not as raw names and values.
        log.extend([{"event": "slot", "name": "faq_topic", "value": "withdraw_rent"},
                    {"event": "slot", "name": "verified", "value": False}])
        return reply

    @app.get("/conversations/{sender}/tracker")
    async def tracker(sender: str):
        return {"sender_id": sender, "events": events.get(sender, [])}

    @app.get("/status")
    async def status():
        return {"model_file": "fake.tar.gz"}

    return app


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not (shutil.which("redis-server") and Path(CHROMIUM).exists() and shutil.which("ffprobe")):
        pytest.skip("needs redis-server, chromium and ffprobe")
    tmp = tmp_path_factory.mktemp("video")
    ports = Ports.free()  # outside the ephemeral range: see scripts/stack.py
    redis_port, rasa_port, gw_port = ports.redis, ports.rasa, ports.gateway
    procs = []
    redis_proc = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(tmp),
                                   "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    procs.append(redis_proc)
    rasa_server = uvicorn.Server(uvicorn.Config(fake_rasa_app({}), host="127.0.0.1", port=rasa_port, log_level="warning"))
    rasa_thread = threading.Thread(target=rasa_server.run, daemon=True)
    rasa_thread.start()
    env = dict(os.environ, ANJU_ENV="test", REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
               RASA_URL=f"http://127.0.0.1:{rasa_port}", VIDEO_LOOPBACK_ICE="true",
               VIDEO_RECORDINGS_DIR=str(tmp / "recordings"), HANDOFF_STAFF_HOURS="00:00-24:00",
               HANDOFF_STAFF_DAYS="[1,2,3,4,5,6,7]", PYTHONPATH=str(ROOT))
    log = open(tmp / "gateway.log", "w")
    gateway = subprocess.Popen([sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory", "--host",
                                "127.0.0.1", "--port", str(gw_port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    procs.append(gateway)
    try:
        r = redis.Redis(port=redis_port, decode_responses=True, socket_timeout=2)
        wait_until(r.ping, what="redis")
        wait_until(lambda: rasa_server.started, what="fake rasa")
        import httpx
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{gw_port}/healthz", timeout=1).status_code == 200, what="gateway")
        yield {"url": f"http://127.0.0.1:{gw_port}", "redis": r, "tmp": tmp}
    finally:
        rasa_server.should_exit = True
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        rasa_thread.join(timeout=5)
        log.close()
        print((tmp / "gateway.log").read_text()[-3000:])


@pytest.fixture(scope="module")
def chromium(browser):
    """The session's one Chromium (tests/conftest.py: same flags, fake camera and microphone): a second
    sync Playwright in the same process would fail inside the first one's event loop."""
    return browser


def log_in_as_staff(page, at: float) -> None:
    """dev-staff through the console's login form, with the TOTP code of the window around `at`."""
    page.fill("#username", "dev-staff")
    page.fill("#password", "dev-staff-pass")
    page.fill("#totp", pyotp.TOTP(DEV_STAFF_ACCOUNTS[0].totp_secret.get_secret_value()).at(at))
    page.get_by_role("button", name="登录").click()


def wait_js(page, expression: str, timeout: float = 20.0) -> None:
    """Polls a JavaScript expression from here: page.wait_for_function polls with eval inside the page,
    which the Content-Security-Policy (script-src 'self') refuses, while page.evaluate is not affected."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"{expression} still false after {timeout} s")
        time.sleep(0.1)


AUDIO_RECEIVED = """async (pc) => {
  if (!pc) return 0;
  const stats = await pc.getStats();
  let packets = 0;
  stats.forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'audio') packets += s.packetsReceived; });
  return packets;
}"""


def test_citizen_and_staff_meet_on_video_and_the_bot_takes_over_again(stack, chromium):
    citizen_ctx, staff_ctx = chromium.new_context(), chromium.new_context()
    citizen, staff = citizen_ctx.new_page(), staff_ctx.new_page()
    try:
        citizen.goto(stack["url"] + "/")
        citizen.wait_for_selector("text=已连接", timeout=15000)
        citizen.get_by_role("button", name="转人工").click()
        citizen.wait_for_selector("#anju-handoff >> text=前面还有 0 位", timeout=10000)
        assert citizen.locator("#anju-handoff .handoff__videos").is_hidden()  # no black boxes while queued

        staff.goto(stack["url"] + "/console")
        assert staff.locator("#desk").is_hidden()  # no queue before login
        log_in_as_staff(staff, at=time.time())
        staff.get_by_role("button", name="接待").click(timeout=10000)
        assert staff.locator("#login").is_hidden()  # the username and one-time code are off screen
        staff.wait_for_selector("#transcript >> text=转人工", timeout=10000)
        case = staff.locator("#case").inner_text()
        assert "租房提取" in case and "身份已核验" in case
        assert "faq_topic" not in case and "withdraw_rent" not in case and "False" not in case
        staff.wait_for_selector("#consent-status >> text=等待市民确认", timeout=10000)

        citizen.wait_for_selector("text=全程录音录像", timeout=10000)
        assert citizen.evaluate("window.AnjuHandoff.state.pc") is None  # no media before consent
        citizen.get_by_role("button", name="同意并开始视频").click()
        staff.wait_for_selector("#consent-status >> text=市民已同意录像", timeout=10000)
        staff.wait_for_selector("#case >> text=市民已同意录像", timeout=10000)

        wait_js(staff, "document.getElementById('remote').videoWidth > 0")
        wait_js(citizen, "document.getElementById('anju-handoff-remote').videoWidth > 0")
        # A real call lasts: let 1.5 s of video play so the recording has something to check.
        wait_js(staff, "document.getElementById('remote').currentTime > 1.5")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            heard = (citizen.evaluate(AUDIO_RECEIVED, citizen.evaluate_handle("window.AnjuHandoff.state.pc")),
                     staff.evaluate(AUDIO_RECEIVED, staff.evaluate_handle("window.AnjuConsole.pc")))
            if min(heard) > 0:
                break
            time.sleep(0.3)
        assert min(heard) > 0, f"audio packets received (citizen, staff): {heard}"

        bot_lines = citizen.locator(".msg--bot").count()
        citizen.get_by_label("输入您的问题").fill("我的提取申请卡住了")
        citizen.get_by_role("button", name="发送").click()
        staff.wait_for_selector("#chat >> text=我的提取申请卡住了", timeout=10000)
        staff.fill("#chat-input", "我帮您看一下")
        staff.locator("#chat-form button").click()
        citizen.wait_for_selector("text=工作人员：我帮您看一下", timeout=10000)
        staff_line = citizen.locator(".msg--staff").last
        assert staff_line.inner_text() == "工作人员：我帮您看一下"
        assert staff_line.evaluate("(el) => getComputedStyle(el, '::before').content") in ("none", "normal")
        assert citizen.locator(".msg--bot").count() == bot_lines  # the bot stayed silent

        staff.fill("#note", "市民对流程不熟，建议回访")
        staff.fill("#summary", "已指导提交租房提取")
        staff.wait_for_selector("#summary-preview >> text=小结：已指导提交租房提取。", timeout=5000)
        staff.get_by_role("button", name="结束服务").click()
        citizen.wait_for_selector("text=已指导提交租房提取", timeout=10000)
        citizen.wait_for_selector("#anju-handoff", state="detached", timeout=10000)
        assert citizen.locator("text=建议回访").count() == 0  # the internal note stays with staff

        citizen.get_by_label("输入您的问题").fill("租房提取要什么材料")
        citizen.get_by_role("button", name="发送").click()
        citizen.wait_for_selector("text=机器人回答：租房提取要什么材料", timeout=10000)
    finally:
        citizen_ctx.close()
        staff_ctx.close()

    parked = stack["redis"].xrange("anju:audit:parked")  # no core here: the audit client parks every record
    audit = [fields for _, fields in parked if fields["action"] == "video.recording"]
    assert len(audit) == 1
    assert [f["outcome"] for _, f in parked if f["action"] == "video.consent"] == ["agreed"]
    assert [f["outcome"] for _, f in parked if f["action"] == "staff.end"] == ["note summary"]
    outcome = dict(part.split("=", 1) for part in audit[0]["outcome"].split())
    recording = stack["tmp"] / "recordings" / outcome["file"]
    assert hashlib.sha256(recording.read_bytes()).hexdigest() == outcome["sha256"]
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                                       str(recording)], capture_output=True, text=True, check=True).stdout)
    assert sorted(s["codec_type"] for s in probe["streams"]) == ["audio", "audio", "video", "video"]
    assert float(probe["format"]["duration"]) > 1


def test_the_citizen_can_enlarge_the_staff_video_and_hang_up(stack, chromium):
    citizen_ctx, staff_ctx = chromium.new_context(), chromium.new_context()
    citizen, staff = citizen_ctx.new_page(), staff_ctx.new_page()
    try:
        citizen.goto(stack["url"] + "/")
        citizen.wait_for_selector("text=已连接", timeout=15000)
        citizen.get_by_role("button", name="转人工").click()
        citizen.wait_for_selector("#anju-handoff >> text=前面还有", timeout=10000)
        staff.goto(stack["url"] + "/console")
        # A one-time code works once: the test above used this window's, the server also takes the next one.
        log_in_as_staff(staff, at=time.time() + 30)
        staff.get_by_role("button", name="接待").first.click(timeout=10000)
        citizen.get_by_role("button", name="同意并开始视频").click(timeout=10000)
        wait_js(citizen, "document.getElementById('anju-handoff-remote').videoWidth > 0")

        enlarge = citizen.get_by_role("button", name="放大工作人员画面")
        enlarge.click()
        assert citizen.get_by_role("button", name="缩小工作人员画面").get_attribute("aria-pressed") == "true"
        citizen.get_by_role("button", name="挂断").click()
        citizen.wait_for_selector("#anju-handoff", state="detached", timeout=10000)
        assert citizen.evaluate("window.AnjuHandoff.state.pc") is None  # camera and microphone released
        staff.wait_for_selector("#notice >> text=市民已挂断", timeout=10000)
        assert staff.locator("#call").is_hidden()
    finally:
        citizen_ctx.close()
        staff_ctx.close()
