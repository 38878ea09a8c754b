// Voice input (dictation) for the citizen widget: hold 按住说话 to talk (mouse or touch), or press it
// once with Space/Enter (or a short tap) to start and once more to stop. The microphone goes through
// an AudioWorklet (capture-worklet.js: 16 kHz PCM16) to WS /ws/speech: {"config": {"sample_rate": 16000}},
// binary PCM, {"eof": 1}; the server answers {"partial"} lines and one {"text"}, or {"error"} with close
// 1013. The recognised text lands in the input for the citizen to check and send; nothing is sent here.
(function () {
  "use strict";
  const RATE = 16000;
  const HOLD_MS = 400;      // a shorter press starts a recording that a second press stops
  const MAX_MS = 60000;     // one utterance at most
  const FINAL_WAIT_MS = 20000;
  const UNAVAILABLE = "语音识别暂不可用，请打字或拨打 12329。";
  const button = document.getElementById("voice-button");
  const input = document.getElementById("input");
  const status = document.getElementById("voice-status");
  const partial = document.getElementById("voice-partial");
  if (!button || !input || !status || !partial) return;

  // phase: idle -> recording -> finishing -> idle
  const state = { phase: "idle", socket: null, context: null, stream: null, node: null, queue: [], sent: 0,
                  heard: [], eofSent: false, holding: false, pressedAt: 0, stopOnUp: false, stopWhenReady: false,
                  timers: [], final: null };

  function say(text) { status.textContent = text; }
  function showPartial(text) { partial.textContent = text ? "听到：" + text : ""; partial.hidden = !text; }

  function setPhase(phase) {
    state.phase = phase;
    const recording = phase === "recording";
    button.setAttribute("aria-pressed", String(recording));
    button.classList.toggle("voice-button--on", recording);
    // Not disabled while recognising: a disabled button would drop the keyboard focus.
    button.setAttribute("aria-disabled", String(phase === "finishing"));
    button.querySelector(".voice-button__text").textContent =
      recording ? "松开结束" : phase === "finishing" ? "正在识别…" : "按住说话";
  }

  function micMessage(error) {
    const name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "无法使用麦克风：您没有允许本页使用麦克风。可在浏览器设置里允许，或直接打字、拨打 12329。";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") return "没有找到麦克风，请直接打字或拨打 12329。";
    if (name === "NotReadableError") return "麦克风正被其他程序占用，请关闭后再试，或直接打字。";
    return "无法打开麦克风，请直接打字或拨打 12329。";
  }

  function heardSoFar() { return state.heard.join(""); }

  function sendEof(ws) {
    ws.send(JSON.stringify({ eof: 1 }));
    state.eofSent = true;
  }

  function sendAudio(buffer) {
    const ws = state.socket;
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(buffer); state.sent += 1; } else state.queue.push(buffer);
  }

  function openSocket() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws/speech");
    ws.binaryType = "arraybuffer";
    state.socket = ws;
    let opened = false;
    ws.addEventListener("open", function () {
      opened = true;
      ws.send(JSON.stringify({ config: { sample_rate: RATE } }));
      state.queue.splice(0).forEach(function (b) { ws.send(b); state.sent += 1; });
      if (state.phase === "finishing" && !state.stream) sendEof(ws);
    });
    ws.addEventListener("message", function (event) {
      if (typeof event.data !== "string") return;
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (typeof frame.error === "string") { fail(frame.error || UNAVAILABLE); return; }
      if (typeof frame.partial === "string") showPartial(heardSoFar() + frame.partial);
      // A pause may end an utterance before the citizen stops: every {"text"} counts, the last after eof.
      if (typeof frame.text === "string" && frame.text.trim()) {
        state.heard.push(frame.text.trim());
        showPartial(heardSoFar());
      }
    });
    ws.addEventListener("close", function (event) {
      if (state.socket !== ws) return;
      state.socket = null;
      if (state.phase === "idle") return;
      if (state.eofSent && event.code === 1000) { done(heardSoFar()); return; }
      // Refused (no such endpoint, 1013 unavailable) or dropped before the final text.
      fail(!opened || event.code === 1013 ? UNAVAILABLE : "语音识别中断了，请再说一遍，或直接打字。");
    });
  }

  async function start() {
    if (state.phase !== "idle") return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || typeof AudioWorkletNode === "undefined") {
      say("此浏览器不能在本页使用麦克风，请直接打字或拨打 12329。");
      return;
    }
    if (window.AnjuReader) window.AnjuReader.stop();  // the widget's own voice must not be dictated
    setPhase("recording");
    state.queue = [];
    state.sent = 0;
    state.heard = [];
    state.eofSent = false;
    state.stopWhenReady = false;
    state.final = null;
    showPartial("");
    say("正在听，请说话…");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
    } catch (e) {
      reset();
      say(micMessage(e));
      return;
    }
    if (state.phase === "idle") { stream.getTracks().forEach(function (t) { t.stop(); }); return; }
    state.stream = stream;
    openSocket();
    let context;
    try {
      context = new AudioContext();
    } catch (e) {
      fail("无法处理麦克风声音，请直接打字或拨打 12329。");
      return;
    }
    state.context = context;
    try {
      await context.audioWorklet.addModule("/static/capture-worklet.js");
      if (state.context !== context) return;  // given up meanwhile (the socket was refused, say)
      const source = context.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(context, "pcm-capture", { processorOptions: { targetRate: RATE } });
      node.port.onmessage = function (event) { sendAudio(event.data); };
      const mute = context.createGain();
      mute.gain.value = 0;  // pulls the graph without playing the microphone back
      source.connect(node).connect(mute).connect(context.destination);
      state.node = node;
      if (context.state === "suspended") await context.resume();
    } catch (e) {
      if (state.context === context) fail("无法处理麦克风声音，请直接打字或拨打 12329。");
      return;
    }
    state.timers.push(setTimeout(finish, MAX_MS));
    if (state.stopWhenReady) finish();
  }

  function releaseMicrophone() {
    if (state.node) { state.node.port.onmessage = null; state.node.disconnect(); state.node = null; }
    if (state.stream) { state.stream.getTracks().forEach(function (t) { t.stop(); }); state.stream = null; }
    if (state.context) { state.context.close(); state.context = null; }
  }

  function finish() {
    if (state.phase !== "recording") return;
    if (!state.node) { state.stopWhenReady = true; return; }  // the microphone is still being opened
    const node = state.node;
    setPhase("finishing");
    say("正在识别…");
    // The worklet posts what it still holds, then the microphone goes and the end is announced.
    if (node) node.port.postMessage("flush");
    state.timers.push(setTimeout(function () {
      releaseMicrophone();
      const ws = state.socket;
      if (ws && ws.readyState === WebSocket.OPEN) sendEof(ws);  // else the socket's open handler sends it
      state.timers.push(setTimeout(function () {
        if (state.heard.length) done(heardSoFar()); else fail("识别超时，请再说一遍，或直接打字。");
      }, FINAL_WAIT_MS));
    }, 150));
  }

  function done(text) {
    text = (text || "").trim();
    state.final = text;
    reset();
    if (!text) { say("没有听清，请再说一遍，或直接打字。"); return; }
    input.value = input.value.trim() ? input.value.trim() + " " + text : text;
    showPartial("");
    input.focus();
    say("已识别：请检查输入框里的文字，无误后点“发送”。");
  }

  function fail(text) {
    reset();
    showPartial("");
    say(text);
  }

  function reset() {
    state.timers.splice(0).forEach(clearTimeout);
    releaseMicrophone();
    const ws = state.socket;
    state.socket = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
    state.holding = false;
    state.stopOnUp = false;
    state.stopWhenReady = false;
    setPhase("idle");
  }

  // Mouse and touch: hold to talk. A short press keeps listening until the next press.
  button.addEventListener("pointerdown", function (event) {
    if (event.button !== 0 || state.phase === "finishing") return;
    event.preventDefault();
    button.setPointerCapture(event.pointerId);
    if (state.phase === "recording") { state.stopOnUp = true; return; }
    state.holding = true;
    state.pressedAt = Date.now();
    start();
  });
  button.addEventListener("pointerup", function () {
    if (state.stopOnUp === true) { state.stopOnUp = false; finish(); return; }
    if (!state.holding) return;
    state.holding = false;
    if (Date.now() - state.pressedAt < HOLD_MS) { say("正在听，说完后再按一下按钮结束。"); return; }
    finish();
  });
  button.addEventListener("pointercancel", function () { if (state.holding) { state.holding = false; finish(); } });
  button.addEventListener("contextmenu", function (event) { event.preventDefault(); });  // long press on phones
  // Keyboard and assistive technology (a click without a pointer): Space or Enter starts, again stops.
  button.addEventListener("click", function (event) {
    if (event.detail !== 0) return;
    if (state.phase === "idle") start(); else finish();
  });

  window.AnjuDictation = { state: state, start: start, finish: finish };
})();
