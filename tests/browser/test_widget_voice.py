"""Read-aloud and voice input in the citizen widget, in Debian's chromium against the real stack.

Read-aloud: every bot line has a labelled 朗读 button; the server voice (POST /api/tts) plays in an audio
element; when the endpoint fails the browser's speechSynthesis reads the line with numbers, amounts and
dates as words (window.speechSynthesis is replaced in the page by a recorder: headless chromium has no
voices); elder mode reads new answers by itself when 自动朗读 is on. Voice input: 按住说话 captures the
microphone (chromium's fake capture device playing a WAV), streams 16 kHz PCM16 to /ws/speech and puts the
recognised text in the input without sending it; a refused microphone or an unavailable recogniser is
said in words. Both work from the keyboard.
"""
import json
import shutil
import subprocess
import time
import wave

import pytest

from speech.spoken_text import speakable
from test_video_handoff import stack as standin_stack  # noqa: F401 (redis, a scripted Rasa, the gateway; no speech server)

pytestmark = [pytest.mark.integration, pytest.mark.browser]
CHROMIUM = "/usr/lib/chromium/chromium"
FAKE_MEDIA = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run",
              "--disable-gpu", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
UNAVAILABLE = "语音识别暂不可用，请打字或拨打 12329。"

# In the page before any script: speechSynthesis records what it is asked to say, and every media
# element that starts playing is noted (observing the browser, not the widget).
RECORDERS = """
window.__spoken = []; window.__cancelled = 0; window.__played = [];
Object.defineProperty(window, 'speechSynthesis', { configurable: true, value: {
  speaking: false, pending: false, paused: false, getVoices: () => [],
  speak(u) { window.__spoken.push({ text: u.text, lang: u.lang }); setTimeout(() => u.onend && u.onend(), 300); },
  cancel() { window.__cancelled += 1; }, pause() {}, resume() {} } });
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  const el = this;
  el.addEventListener('timeupdate', () => {
    if (el.currentTime > 0 && !el.__noted) { el.__noted = true; window.__played.push({ src: el.src, duration: el.duration }); }
  });
  return play.call(this);
};
"""

def wait_js(page, expression: str, timeout: float = 20.0):
    """Polls from here: page.wait_for_function evaluates inside the page, which the CSP refuses."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{expression} still false after {timeout} s")
        time.sleep(0.1)


def open_widget(browser, stack, elder=False, viewport=None):
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 800}, locale="zh-CN")
    context.add_init_script(RECORDERS)
    page = context.new_page()
    page.goto(stack.urls["gateway"] + "/")
    page.wait_for_selector("text=已连接", timeout=15000)
    if elder:
        page.get_by_role("button", name="长辈模式").click()
    return context, page


def ask(page, text):
    before = page.locator(".msg--bot").count()
    page.get_by_label("输入您的问题").fill(text)
    page.get_by_role("button", name="发送").click()
    page.locator(".msg--bot").nth(before).wait_for(timeout=30000)
    return page.locator(".msg--bot").nth(before)


def message_text(line) -> str:
    """A bot line's own text, without its button's label."""
    return line.evaluate("(li) => li.firstChild.textContent")


def tts_unavailable(page):
    page.route("**/api/tts", lambda route: route.fulfill(status=503, content_type="application/json",
                                                          body=json.dumps({"detail": "语音合成暂不可用"})))


WRITTEN = ["您的余额是1,234.5元", "可提取12000元", "2026年9月20日到账", "2026-09-20", "请拨打12329",
           "身份证号11010519491231002X", "利率3.25%", "您有2笔贷款", "10个工作日", "9:05开门", "¥500",
           "最高贷款额度1200000元，期限最长30年，自2025年5月8日起执行", "服务时间 8:30-17:00，每月10号前提交"]


def test_the_pages_reading_of_numbers_matches_the_servers(stack, browser):
    """The browser voice gets the same words as the server voice (speech/spoken_text.py)."""
    context, page = open_widget(browser, stack)
    try:
        spoken = page.evaluate("(texts) => texts.map((t) => window.AnjuReader.spokenText(t))", WRITTEN)
        assert spoken == [speakable(w) for w in WRITTEN]
        assert spoken[1] == "可提取一万二千元" and spoken[2] == "二零二六年九月二十日到账"
    finally:
        context.close()


def test_every_answer_has_a_play_button_and_the_browser_voice_reads_numbers_as_words(stack, browser):
    context, page = open_widget(browser, stack)
    tts_unavailable(page)
    try:
        answer = ask(page, "公积金贷款利率是多少")
        text = message_text(answer)
        assert "%" in text  # the rate answer carries numbers
        buttons = page.get_by_role("button", name="朗读这条消息")
        assert buttons.count() == page.locator(".msg--bot").count() >= 1
        assert page.locator(".msg--user .msg__read").count() == 0  # the citizen's own lines have none

        answer.get_by_role("button", name="朗读这条消息").click()
        spoken = wait_js(page, "window.__spoken.length && window.__spoken")
        said = "".join(s["text"] for s in wait_js(page, "window.__spoken"))
        assert all(s["lang"] == "zh-CN" for s in spoken)
        assert said == speakable(text)
        assert "百分之" in said and not any(c.isdigit() for c in said), said
        # While it reads, the same button stops it.
        stop = answer.get_by_role("button", name="停止朗读")
        assert stop.get_attribute("aria-pressed") == "true"
        stop.click()
        assert page.evaluate("window.__cancelled") >= 1
        assert answer.get_by_role("button", name="朗读这条消息").get_attribute("aria-pressed") == "false"
    finally:
        context.close()


def test_a_new_message_stops_the_reading(stack, browser):
    context, page = open_widget(browser, stack)
    tts_unavailable(page)
    try:
        answer = ask(page, "公积金贷款利率是多少")
        answer.get_by_role("button", name="朗读这条消息").click()
        wait_js(page, "window.__spoken.length")
        cancelled = page.evaluate("window.__cancelled")
        page.get_by_label("输入您的问题").fill("谢谢")
        page.get_by_role("button", name="发送").click()
        wait_js(page, f"window.__cancelled > {cancelled}", timeout=5)
        assert page.get_by_role("button", name="停止朗读").count() == 0
    finally:
        context.close()


def test_elder_mode_reads_new_answers_by_itself_when_asked_and_remembers_it(stack, browser):
    context, page = open_widget(browser, stack, elder=True, viewport={"width": 390, "height": 844})
    tts_unavailable(page)
    try:
        toggle = page.get_by_role("button", name="自动朗读")
        assert toggle.is_visible() and toggle.get_attribute("aria-pressed") == "false"
        box = toggle.bounding_box()
        assert min(box["width"], box["height"]) >= 60  # elder-mode target
        ask(page, "公积金贷款利率是多少")
        time.sleep(1)
        assert page.evaluate("window.__spoken.length") == 0  # off: nothing read unasked

        toggle.click()
        assert toggle.get_attribute("aria-pressed") == "true"
        answer = ask(page, "住房公积金贷款期限最长多少年")
        wait_js(page, "window.__spoken.length")
        said = "".join(s["text"] for s in page.evaluate("window.__spoken"))
        assert speakable(message_text(answer)) in said

        page.reload()
        page.wait_for_selector("text=已连接", timeout=15000)
        assert page.get_by_role("button", name="自动朗读").get_attribute("aria-pressed") == "true"
        page.get_by_role("button", name="长辈模式").click()  # normal mode: no automatic reading offered
        assert page.get_by_role("button", name="自动朗读").is_hidden()
    finally:
        context.close()


def test_keyboard_alone_plays_and_stops_an_answer(stack, browser):
    context, page = open_widget(browser, stack)
    tts_unavailable(page)
    try:
        ask(page, "公积金贷款利率是多少")
        page.locator("#input").focus()
        for _ in range(30):
            page.keyboard.press("Shift+Tab")
            if page.evaluate("document.activeElement.classList.contains('msg__read')"):
                break
        else:
            raise AssertionError("Shift+Tab never reached a 朗读 button")
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.press("Enter")
        wait_js(page, "window.__spoken.length")
        page.keyboard.press("Enter")  # focus stayed on the button, now 停止
        assert page.evaluate("document.activeElement.getAttribute('aria-pressed')") == "false"
        assert page.evaluate("window.__cancelled") >= 1
    finally:
        context.close()


def test_the_server_voice_plays_in_an_audio_element(stack, browser):
    context, page = open_widget(browser, stack)
    try:
        answer = ask(page, "公积金贷款利率是多少")
        with page.expect_response("**/api/tts", timeout=30000) as response_info:
            answer.get_by_role("button", name="朗读这条消息").click()
        response = response_info.value
        if response.status in (404, 405):
            pytest.skip("this gateway has no POST /api/tts yet")
        assert response.status == 200, response.text()
        assert response.headers["content-type"].startswith("audio/wav")
        played = wait_js(page, "window.__played.length && window.__played", timeout=20)
        assert played[0]["src"].startswith("blob:") and played[0]["duration"] > 0
        assert page.evaluate("window.__spoken.length") == 0  # the browser voice was not needed
        header = page.evaluate("""() => fetch('/api/tts', { method: 'POST', headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ text: '请拨打12329' }) }).then((r) => r.arrayBuffer())
            .then((b) => new TextDecoder('ascii').decode(new Uint8Array(b).slice(0, 12)))""")
        assert header.startswith("RIFF") and header.endswith("WAVE")
    finally:
        context.close()


# ---- voice input ----

@pytest.fixture(scope="module")
def speaking_chromium(browser, tmp_path_factory):
    """A second chromium from the same playwright whose fake microphone plays a Mandarin question."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
    wav = tmp_path_factory.mktemp("mic") / "question.wav"
    subprocess.run(["espeak-ng", "-v", "cmn", "-s", "140", "-w", str(wav), "公积金贷款利率是多少"], check=True, timeout=20)
    with wave.open(str(wav)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
    other = browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                        args=FAKE_MEDIA + [f"--use-file-for-fake-audio-capture={wav}"])
    try:
        yield other
    finally:
        other.close()


def record_speech_socket(page) -> dict:
    """What the page sends to and receives from /ws/speech, as playwright sees it on the wire."""
    seen = {"sent": [], "received": [], "closed": False}

    def on_socket(ws):
        if not ws.url.endswith("/ws/speech"):
            return
        ws.on("framesent", lambda payload: seen["sent"].append(payload))
        ws.on("framereceived", lambda payload: seen["received"].append(payload))
        ws.on("close", lambda _ws: seen.__setitem__("closed", True))

    page.on("websocket", on_socket)
    return seen


def voice_idle(page, timeout=60.0):
    wait_js(page, "window.AnjuDictation.state.phase === 'idle'", timeout=timeout)


def check_audio_frames(sent: list, seconds_held: float):
    assert json.loads(sent[0]) == {"config": {"sample_rate": 16000}}
    audio = [f for f in sent if isinstance(f, bytes)]
    assert audio and all(len(f) % 2 == 0 and len(f) <= 3200 for f in audio)
    seconds = sum(len(f) for f in audio) / 2 / 16000
    # 16 kHz PCM16: the audio sent lasts about as long as the button was held.
    assert seconds_held - 1.0 <= seconds <= seconds_held + 1.5, (seconds, seconds_held)
    assert json.loads(sent[-1]) == {"eof": 1}
    return seconds


def test_holding_the_voice_button_streams_16khz_pcm_and_the_final_text_waits_in_the_input(stack, speaking_chromium):
    """With a scripted recogniser in place of /ws/speech (playwright's WebSocket routing): the wire format,
    the partial text, and the final text in the input, not sent."""
    context = speaking_chromium.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    received = {"audio": 0}
    sent = []

    def recogniser(ws):
        def on_message(message):
            sent.append(message)
            if isinstance(message, bytes):
                received["audio"] += len(message)
                if received["audio"] >= 16000:
                    ws.send(json.dumps({"partial": "公积金贷款"}, ensure_ascii=False))
            elif json.loads(message).get("eof"):
                ws.send(json.dumps({"text": "公积金贷款利率是多少"}, ensure_ascii=False))
                ws.close(code=1000)
        ws.on_message(on_message)

    page.route_web_socket("**/ws/speech", recogniser)
    try:
        page.goto(stack.urls["gateway"] + "/")
        page.wait_for_selector("text=已连接", timeout=15000)
        voice = page.locator("#voice-button")  # named 按住说话, then 松开结束 while it listens
        assert voice.get_attribute("aria-describedby") == "voice-hint"
        page.get_by_role("button", name="按住说话").hover()
        page.mouse.down()
        held_from = time.monotonic()
        page.wait_for_selector("#voice-partial >> text=公积金贷款", timeout=10000)
        assert voice.get_attribute("aria-pressed") == "true"
        time.sleep(max(0.0, 3.0 - (time.monotonic() - held_from)))
        page.mouse.up()
        held = time.monotonic() - held_from
        voice_idle(page)
        assert page.locator("#input").input_value() == "公积金贷款利率是多少"
        assert "请检查" in page.locator("#voice-status").inner_text()
        assert page.locator(".msg--user").count() == 0  # the citizen confirms; nothing was sent
        check_audio_frames(sent, held)
        assert page.evaluate("window.AnjuDictation.state.stream") is None  # the microphone is released
    finally:
        context.close()


def test_the_real_recogniser_gets_the_microphone_and_its_text_lands_in_the_input(stack, speaking_chromium):
    """Against the gateway's own /ws/speech: the final text it sends is what the input holds; with no
    endpoint (or no recogniser) the citizen reads that dictation is unavailable."""
    context = speaking_chromium.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    seen = record_speech_socket(page)
    try:
        page.goto(stack.urls["gateway"] + "/")
        page.wait_for_selector("text=已连接", timeout=15000)
        voice = page.locator("#voice-button")  # named 按住说话, then 松开结束 while it listens
        assert voice.get_attribute("aria-describedby") == "voice-hint"
        page.get_by_role("button", name="按住说话").hover()
        page.mouse.down()
        held_from = time.monotonic()
        time.sleep(3.5)
        page.mouse.up()
        held = time.monotonic() - held_from
        voice_idle(page)
        replies = [json.loads(r) for r in seen["received"] if isinstance(r, str)]
        status = page.locator("#voice-status").inner_text()
        if not replies or any("error" in r for r in replies):
            print(f"/ws/speech unavailable: replies {replies}, status {status}")
            assert status == UNAVAILABLE or any(r.get("error") == status for r in replies), status
            assert page.locator("#input").input_value() == ""
            return
        seconds = check_audio_frames(seen["sent"], held)
        print(f"/ws/speech: {seconds:.2f} s of audio sent, replies {replies}")
        heard = "".join(r["text"].strip() for r in replies if r.get("text"))
        if heard:
            assert page.locator("#input").input_value() == heard
        else:
            assert "没有听清" in status
        assert page.locator(".msg--user").count() == 0
    finally:
        context.close()


def test_keyboard_starts_and_stops_dictation_and_an_unavailable_recogniser_is_said(stack, speaking_chromium):
    context = speaking_chromium.new_context(locale="zh-CN")
    page = context.new_page()

    sent = []

    def unavailable(ws):
        def on_message(message):
            sent.append(message)
            if isinstance(message, str) and json.loads(message).get("eof"):
                ws.send(json.dumps({"error": UNAVAILABLE}, ensure_ascii=False))
                ws.close(code=1013, reason="unavailable")
        ws.on_message(on_message)

    page.route_web_socket("**/ws/speech", unavailable)
    try:
        page.goto(stack.urls["gateway"] + "/")
        page.wait_for_selector("text=已连接", timeout=15000)
        page.locator("#input").focus()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "voice-button"
        page.keyboard.press("Space")
        wait_js(page, "document.getElementById('voice-button').getAttribute('aria-pressed') === 'true'")
        wait_js(page, "window.AnjuDictation.state.sent > 5", timeout=10)
        page.keyboard.press("Enter")
        voice_idle(page)
        assert page.locator("#voice-status").inner_text() == UNAVAILABLE
        assert page.evaluate("document.activeElement.id") == "voice-button"  # focus kept for the next try
        assert any(isinstance(f, bytes) for f in sent)
        assert page.locator("#input").input_value() == ""
    finally:
        context.close()


def test_a_refused_microphone_is_said_in_words(stack, browser):
    context = browser.new_context(locale="zh-CN")
    context.add_init_script("""navigator.mediaDevices.getUserMedia = () =>
        Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));""")
    page = context.new_page()
    try:
        page.goto(stack.urls["gateway"] + "/")
        page.wait_for_selector("text=已连接", timeout=15000)
        page.get_by_role("button", name="按住说话").click()
        page.wait_for_selector("#voice-status >> text=没有允许本页使用麦克风", timeout=5000)
        assert page.locator("#voice-button").get_attribute("aria-pressed") == "false"
    finally:
        context.close()


def test_with_no_speech_server_the_gateway_refuses_and_the_citizen_reads_why(standin_stack, browser):  # noqa: F811
    """The real gateway with its speech server away: {"error"} and close 1013, said as the server words it,
    even while the page is still opening the microphone."""
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(standin_stack["url"] + "/")
        page.wait_for_selector("text=已连接", timeout=15000)
        page.locator("#voice-button").focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("#voice-status >> text=语音识别暂时不可用", timeout=15000)
        voice_idle(page)
        assert "12329" in page.locator("#voice-status").inner_text()
        assert page.evaluate("window.AnjuDictation.state.stream") is None  # the microphone is released
        assert page.locator("#voice-button").get_attribute("aria-pressed") == "false"
    finally:
        context.close()
