"""语音通话 in the citizen widget (issue 18.5): the hotline (/ws/voice) from the browser microphone.

On the real stack (Rasa, the speech server with Whisper base, the gateway): Chromium's fake microphone plays
a Mandarin fixture (tests/fixtures/speech/zh/rent_01.wav, 我想问一下租房可以提取公积金吗, at 48 kHz with long
quiet after it, looped by Chromium). Pressing 语音通话 opens the call in the chat's own session; what the
caller said and the bot's answer appear in the chat log; the reply audio is played through Web Audio; 挂断
ends the call. An axe check of the page with the call panel open. With a scripted hotline (playwright's
WebSocket routing): barge-in stops the queued audio, bot buttons become keys that send {"dtmf"}, and a
dropped call or a silence hang-up is said in words. A refused microphone is said and the text chat still works.
"""
import json
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from speech.pcm import resample
from zh_fixtures import write_wav
from test_accessibility import axe_violations
from test_widget_voice import CHROMIUM, FAKE_MEDIA, wait_js

pytestmark = [pytest.mark.integration, pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "speech" / "zh" / "rent_01.wav"


@pytest.fixture(scope="module")
def calling_chromium(browser, tmp_path_factory):
    """A Chromium whose microphone says the rent question once every ~40 s (quiet after it, so the bot's
    answer is not cut in on while the test listens)."""
    with wave.open(str(FIXTURE)) as w:
        rate, speech = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    audio = np.concatenate([np.zeros(int(1.5 * rate), np.int16), speech, np.zeros(int(35 * rate), np.int16)])
    wav = write_wav(tmp_path_factory.mktemp("call-mic") / "caller.wav", resample(audio, rate, 48_000), 48_000)
    other = browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                        args=FAKE_MEDIA + [f"--use-file-for-fake-audio-capture={wav}"])
    try:
        yield other
    finally:
        other.close()


def record_voice_socket(page) -> dict:
    seen = {"sent": [], "received": []}

    def on_socket(ws):
        if ws.url.endswith("/ws/voice"):
            ws.on("framesent", lambda payload: seen["sent"].append(payload))
            ws.on("framereceived", lambda payload: seen["received"].append(payload))

    page.on("websocket", on_socket)
    return seen


def open_page(browser_, stack, init_script=None):
    context = browser_.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.goto(stack.urls["gateway"] + "/")
    page.wait_for_selector("text=已连接", timeout=15000)
    return context, page


def call_lines(page, kind: str) -> list[str]:
    return page.evaluate(f"Array.from(document.querySelectorAll('.msg--{kind}.msg--call')).map(li => li.textContent)")


def test_a_spoken_question_gets_a_spoken_answer_in_the_chat_log_and_hangup_ends_the_call(stack, calling_chromium):
    context, page = open_page(calling_chromium, stack)
    seen = record_voice_socket(page)
    try:
        call = page.get_by_role("button", name="语音通话")
        assert call.get_attribute("aria-pressed") == "false"
        call.click()
        page.wait_for_selector("#call-status >> text=通话中", timeout=15000)
        assert call.get_attribute("aria-pressed") == "true"
        # The chat's session: the hotline keeps it (the same conversation), it makes no new one.
        first = json.loads(next(f for f in seen["received"] if isinstance(f, str)))
        assert first == {"type": "session", "new": False}
        assert json.loads(seen["sent"][0]) == {"config": {"sample_rate": 16000}}
        # The caller's words, as the hotline heard them, then the bot's answer about renting.
        wait_js(page, "Array.from(document.querySelectorAll('.msg--user.msg--call'))"
                      ".some(li => /租房|公积金/.test(li.textContent))", timeout=90)
        heard = [t for t in call_lines(page, "user") if "租房" in t or "公积金" in t]
        # (the greeting names no renting: a line about it is the answer)
        wait_js(page, "Array.from(document.querySelectorAll('.msg--bot.msg--call'))"
                      ".some(li => /租房|租赁|房租/.test(li.textContent))", timeout=60)
        # Its audio arrives and plays through Web Audio (buffers started and finished).
        wait_js(page, "Number(document.getElementById('call-panel').dataset.audioBytes) > 16000", timeout=30)
        wait_js(page, "Number(document.getElementById('call-panel').dataset.audioPlayed) > 2", timeout=30)
        audio_bytes = int(page.locator("#call-panel").get_attribute("data-audio-bytes"))
        sent_audio = sum(len(f) for f in seen["sent"] if isinstance(f, bytes))
        print(f"heard {heard}; {sent_audio / 32000:.1f} s of caller audio sent, {audio_bytes / 32000:.1f} s of reply received")
        assert all(len(f) <= 3200 and len(f) % 2 == 0 for f in seen["sent"] if isinstance(f, bytes))
        # The call panel passes axe with the call up and the keypad open.
        page.get_by_role("button", name="拨号键盘").click()
        assert page.get_by_role("group", name="拨号键盘（身份证号里的 X 按 *）").is_visible()
        assert axe_violations(page) == []
        page.get_by_role("button", name="挂断").click()
        page.wait_for_selector("#call-status >> text=通话已结束", timeout=10000)
        assert call.get_attribute("aria-pressed") == "false"
        assert {"hangup": 1} in [json.loads(f) for f in seen["sent"] if isinstance(f, str)]
        assert {"type": "hangup", "reason": "caller"} in [json.loads(f) for f in seen["received"] if isinstance(f, str)]
        assert page.evaluate("window.AnjuCall.state.stream === null && window.AnjuCall.state.context === null")
        assert page.get_by_role("button", name="挂断").count() == 0  # hidden with the call
        assert page.evaluate("document.activeElement.id") == "call-button"  # focus not lost with the panel's buttons
    finally:
        context.close()


def scripted_hotline(page, script):
    """Routes /ws/voice to `script(ws, message, sent)`, which answers as the hotline would."""
    sent, sockets = [], []

    def handler(ws):
        sockets.append(ws)
        ws.send(json.dumps({"type": "session", "new": False}))
        ws.on_message(lambda message: (sent.append(message), script(ws, message, sent)))

    page.route_web_socket("**/ws/voice", handler)
    return sent, sockets


def tone(seconds: float) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


def test_barge_in_stops_the_audio_bot_buttons_are_keys_and_a_silence_hangup_is_said(stack, calling_chromium):
    context, page = open_page(calling_chromium, stack)

    def script(ws, message, sent):
        if isinstance(message, str) and "config" in json.loads(message):
            ws.send(json.dumps({"type": "bot", "text": "请选择要办理的业务。",
                                "buttons": [{"title": "提取", "payload": "/withdraw"},
                                            {"title": "贷款", "payload": "/loan"}]}, ensure_ascii=False))
            audio = tone(6.0)
            for i in range(0, len(audio), 3200):
                ws.send(audio[i:i + 3200])
        elif isinstance(message, str) and json.loads(message).get("dtmf") == "2":
            ws.send(json.dumps({"type": "caller", "dtmf": "2"}))
            ws.send(json.dumps({"type": "bot", "text": "很久没有听到您的声音，本次通话先结束了。"}, ensure_ascii=False))
            ws.send(json.dumps({"type": "hangup", "reason": "silence"}))
            ws.close(code=1000)

    sent, sockets = scripted_hotline(page, script)
    try:
        page.locator("#call-button").focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("#call-choices >> text=2 贷款", timeout=15000)
        assert page.locator("#call-button").get_attribute("aria-pressed") == "true"
        wait_js(page, "window.AnjuCall.state.sources.length > 10", timeout=10)  # 6 s of audio queued
        assert "请选择要办理的业务" in "".join(call_lines(page, "bot"))
        sockets[0].send(json.dumps({"type": "playback_stopped"}))  # the caller cut in
        wait_js(page, "window.AnjuCall.state.sources.length === 0", timeout=5)  # what was queued is stopped
        assert page.evaluate("window.AnjuCall.state.phase") == "active"  # the call goes on
        page.get_by_role("group", name="按键选择").get_by_role("button", name="2 贷款").focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("#call-status >> text=很久没有听到您的声音", timeout=10000)
        assert {"dtmf": "2"} in [json.loads(m) for m in sent if isinstance(m, str)]
        assert any("按键 2" in t for t in call_lines(page, "user"))
        assert page.locator("#call-button").get_attribute("aria-pressed") == "false"
        assert page.evaluate("document.activeElement.id") == "call-button"
        assert page.evaluate("window.AnjuCall.state.stream") is None  # the microphone is released
    finally:
        context.close()


def test_a_dropped_call_is_said_and_the_call_can_be_made_again(stack, calling_chromium):
    context, page = open_page(calling_chromium, stack)
    calls = []

    def script(ws, message, sent):
        if isinstance(message, str) and "config" in json.loads(message):
            calls.append(1)
            ws.close(code=1011)

    scripted_hotline(page, script)
    try:
        page.get_by_role("button", name="语音通话").click()
        page.wait_for_selector("#call-status >> text=通话连接中断了", timeout=15000)
        assert page.locator("#call-button").get_attribute("aria-pressed") == "false"
        page.get_by_role("button", name="语音通话").click()
        wait_js(page, "document.getElementById('call-status').textContent.includes('通话连接中断了') && "
                      "window.AnjuCall.state.phase === 'idle'", timeout=15)
        assert len(calls) == 2
    finally:
        context.close()


def test_a_refused_microphone_is_said_and_the_text_chat_still_works(stack, browser):
    context, page = open_page(browser, stack, init_script="""navigator.mediaDevices.getUserMedia = () =>
        Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));""")
    opened = []
    page.on("websocket", lambda ws: opened.append(ws.url) if ws.url.endswith("/ws/voice") else None)
    try:
        page.get_by_role("button", name="语音通话").click()
        page.wait_for_selector("#call-status >> text=没有允许本页使用麦克风", timeout=5000)
        assert page.locator("#call-button").get_attribute("aria-pressed") == "false"
        assert opened == []  # no call without a microphone
        before = page.locator(".msg--bot").count()
        page.get_by_label("输入您的问题").fill("租房可以提取公积金吗")
        page.get_by_role("button", name="发送").click()
        page.locator(".msg--bot").nth(before).wait_for(timeout=30000)
        assert "租" in page.locator(".msg--bot").nth(before).inner_text()
    finally:
        context.close()
