// 语音通话 for the citizen widget: the hotline (WS /ws/voice) from the browser microphone, in the same
// conversation as the chat (the socket carries the widget's session cookie, which the gateway keeps).
// Out: {"config": {"sample_rate": 16000}}, binary 16 kHz PCM16 (capture-worklet.js, 100 ms pieces),
// {"dtmf": "1"}, {"hangup": 1}. In: {"type": "session"}, {"type": "bot", "text", "buttons"},
// {"type": "caller", "text"|"dtmf"}, binary reply audio (PCM16 at 16 kHz, played through Web Audio as it
// comes), {"type": "audio_end"}, {"type": "playback_stopped"} (the caller cut in: what is queued stops),
// {"type": "hangup", "reason"}, {"error"} before a close. Both sides' words go into the chat log, so the
// call can be followed by reading; the bot's buttons become keys. A refused microphone is said in words
// and nothing else changes: the text chat goes on.
(function () {
  "use strict";
  const RATE = 16000;
  const UNAVAILABLE = "语音通话暂不可用，请打字或拨打 12329。";
  const ENDED = {
    caller: "通话已结束。需要时可以再点“语音通话”，或继续打字。",
    silence: "很久没有听到您的声音，通话已结束。需要时可以再点“语音通话”，或继续打字。",
    max_length: "通话时间已到上限，通话已结束。需要时可以再点“语音通话”，或继续打字。",
    gone: "本次会话已结束，通话已挂断。可以继续打字，或再点“语音通话”。"
  };
  const DROPPED = "通话连接中断了。可以再点“语音通话”重新拨打，或继续打字。";
  const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];
  const tools = document.querySelector(".chat__tools");
  const list = document.getElementById("messages");
  const log = document.getElementById("messages-log");
  if (!tools || !list || !log) return;

  // ---- the button and the panel ----
  const button = document.createElement("button");
  button.type = "button";
  button.id = "call-button";
  button.className = "call-button";
  button.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-controls", "call-panel");
  button.textContent = "语音通话";
  tools.insertBefore(button, document.getElementById("human-button"));

  const panel = document.createElement("section");
  panel.id = "call-panel";
  panel.className = "call";
  panel.setAttribute("aria-label", "语音通话");
  panel.hidden = true;
  panel.dataset.audioBytes = "0";
  panel.dataset.audioPlayed = "0";
  const callStatus = document.createElement("p");
  callStatus.id = "call-status";
  callStatus.className = "call__status";
  callStatus.setAttribute("role", "status");
  const controls = document.createElement("div");
  controls.className = "call__controls";
  controls.hidden = true;
  const choices = document.createElement("div");
  choices.id = "call-choices";
  choices.className = "call__keys";
  choices.setAttribute("role", "group");
  choices.setAttribute("aria-label", "按键选择");
  choices.hidden = true;
  const padToggle = document.createElement("button");
  padToggle.type = "button";
  padToggle.className = "call__pad-toggle";
  padToggle.setAttribute("aria-expanded", "false");
  padToggle.setAttribute("aria-controls", "call-keypad");
  padToggle.textContent = "拨号键盘";
  const keypad = document.createElement("div");
  keypad.id = "call-keypad";
  keypad.className = "call__keypad";
  keypad.setAttribute("role", "group");
  keypad.setAttribute("aria-label", "拨号键盘（身份证号里的 X 按 *）");
  keypad.hidden = true;
  KEYS.forEach(function (key) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = key;
    if (key === "*") b.setAttribute("aria-label", "星号");
    if (key === "#") b.setAttribute("aria-label", "井号");
    b.addEventListener("click", function () { sendKeys(key); });
    keypad.appendChild(b);
  });
  const hangupButton = document.createElement("button");
  hangupButton.type = "button";
  hangupButton.id = "call-hangup";
  hangupButton.className = "call__hangup";
  hangupButton.textContent = "挂断";
  const row = document.createElement("div");
  row.className = "call__row";
  row.appendChild(padToggle);
  row.appendChild(hangupButton);
  controls.appendChild(choices);
  controls.appendChild(row);
  controls.appendChild(keypad);
  panel.appendChild(callStatus);
  panel.appendChild(controls);
  log.parentNode.insertBefore(panel, log);

  // phase: idle -> starting (microphone, socket) -> active -> idle
  const state = { phase: "idle", socket: null, context: null, stream: null, node: null, sources: [],
                  playAt: 0, bytes: 0, played: 0, sent: 0, ended: null, hangingUp: false };

  function say(text) { callStatus.textContent = text; panel.hidden = false; }

  function setPhase(phase) {
    state.phase = phase;
    const on = phase !== "idle";
    button.setAttribute("aria-pressed", String(on));
    button.classList.toggle("call-button--on", on);
    controls.hidden = !on;
    if (!on) { showChoices([]); keypad.hidden = true; padToggle.setAttribute("aria-expanded", "false"); }
  }

  function micMessage(error) {
    const name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "无法语音通话：您没有允许本页使用麦克风。可在浏览器设置里允许后再点“语音通话”，或直接打字、拨打 12329。";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") return "没有找到麦克风，无法语音通话。请直接打字或拨打 12329。";
    if (name === "NotReadableError") return "麦克风正被其他程序占用，请关闭后再试，或直接打字。";
    return "无法打开麦克风，请直接打字或拨打 12329。";
  }

  // ---- the chat log: both sides' words ----
  function addLine(kind, text) {
    const item = document.createElement("li");
    item.className = "msg msg--" + kind + " msg--call";
    const via = document.createElement("span");
    via.className = "msg__via";
    via.textContent = kind === "user" ? "（语音通话·您）" : "（语音通话）";
    item.appendChild(via);
    item.appendChild(document.createTextNode(text));
    list.appendChild(item);
    item.scrollIntoView({ block: "end" });
  }

  function showChoices(buttons) {
    choices.textContent = "";
    (buttons || []).slice(0, 8).forEach(function (b, i) {
      const key = String(i + 1);
      const el = document.createElement("button");
      el.type = "button";
      el.textContent = key + " " + (b.title || "");
      el.dataset.key = key;
      el.addEventListener("click", function () { sendKeys(key); });
      choices.appendChild(el);
    });
    choices.hidden = !choices.children.length;
  }

  function sendJson(data) {
    const ws = state.socket;
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(data)); return true; }
    return false;
  }

  function sendKeys(keys) {
    if (state.phase !== "active") return;
    stopPlayback();  // the hotline stops its audio too (barge-in by key)
    sendJson({ dtmf: keys });
  }

  // ---- reply audio: PCM16 pieces scheduled back to back ----
  function playPiece(data) {
    const context = state.context;
    const samples = new Int16Array(data, 0, Math.floor(data.byteLength / 2));
    state.bytes += data.byteLength;
    panel.dataset.audioBytes = String(state.bytes);
    if (!context || !samples.length) return;
    const buffer = context.createBuffer(1, samples.length, RATE);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(context.destination);
    const at = Math.max(context.currentTime + 0.05, state.playAt);
    source.start(at);
    state.playAt = at + buffer.duration;
    state.sources.push(source);
    source.onended = function () {
      const i = state.sources.indexOf(source);
      if (i >= 0) state.sources.splice(i, 1);
      if (state.context === context) {
        state.played += 1;
        panel.dataset.audioPlayed = String(state.played);
      }
    };
  }

  function stopPlayback() {
    state.sources.splice(0).forEach(function (s) {
      s.onended = null;
      try { s.stop(); } catch (e) { /* not started yet */ }
    });
    state.playAt = 0;
    panel.dataset.playing = "false";
  }

  // ---- the call ----
  function onFrame(frame) {
    if (typeof frame.error === "string") { state.ended = frame.error || UNAVAILABLE; return; }
    switch (frame.type) {
      case "bot":
        if (frame.text) addLine("bot", frame.text);
        if (frame.buttons) showChoices(frame.buttons);
        break;
      case "caller":
        if (typeof frame.text === "string" && frame.text.trim()) addLine("user", frame.text.trim());
        else if (frame.dtmf) addLine("user", "按键 " + frame.dtmf);
        break;
      case "playback_stopped":
        stopPlayback();
        break;
      case "audio_end":
        panel.dataset.playing = "false";
        break;
      case "audio_unavailable":
        say("通话中：这次回答没有声音，请看对话记录里的文字。");
        break;
      case "hangup":
        state.ended = ENDED[frame.reason] || ENDED.caller;
        break;
      default:
        break;
    }
  }

  function openSocket() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws/voice");
    ws.binaryType = "arraybuffer";
    state.socket = ws;
    let opened = false;
    ws.addEventListener("open", function () {
      opened = true;
      ws.send(JSON.stringify({ config: { sample_rate: RATE } }));
    });
    ws.addEventListener("message", function (event) {
      if (state.socket !== ws) return;
      if (typeof event.data !== "string") {
        panel.dataset.playing = "true";
        playPiece(event.data);
        return;
      }
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "session") {
        if (state.phase === "starting") {
          setPhase("active");
          say("通话中：请直接说出您的问题。按“挂断”结束通话。");
        }
        return;
      }
      onFrame(frame);
    });
    ws.addEventListener("close", function (event) {
      if (state.socket !== ws) return;
      state.socket = null;
      let text = state.ended;
      if (!text) text = state.hangingUp ? ENDED.caller : (!opened || event.code === 1013 ? UNAVAILABLE : DROPPED);
      end(text);
    });
  }

  async function start() {
    if (state.phase !== "idle") return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || typeof AudioWorkletNode === "undefined") {
      say("此浏览器不能在本页使用麦克风，无法语音通话。请直接打字或拨打 12329。");
      return;
    }
    if (window.AnjuReader) window.AnjuReader.stop();
    state.ended = null;
    state.hangingUp = false;
    state.bytes = 0;
    state.played = 0;
    state.sent = 0;
    panel.dataset.audioBytes = "0";
    panel.dataset.audioPlayed = "0";
    let context;
    try {
      context = new AudioContext();  // made in the click, so the reply audio may play
    } catch (e) {
      say("无法处理声音，无法语音通话。请直接打字或拨打 12329。");
      return;
    }
    state.context = context;
    setPhase("starting");
    say("正在打开麦克风…");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
    } catch (e) {
      release();
      setPhase("idle");
      say(micMessage(e));
      button.focus();
      return;
    }
    if (state.phase !== "starting" || state.context !== context) { stream.getTracks().forEach(function (t) { t.stop(); }); return; }
    state.stream = stream;
    try {
      await context.audioWorklet.addModule("/static/capture-worklet.js");
      if (state.context !== context) return;
      const source = context.createMediaStreamSource(stream);
      const node = new AudioWorkletNode(context, "pcm-capture", { processorOptions: { targetRate: RATE } });
      node.port.onmessage = function (event) {
        if (state.phase !== "active") return;  // nothing before the call is up: the config goes first
        const ws = state.socket;
        if (ws && ws.readyState === WebSocket.OPEN) { ws.send(event.data); state.sent += 1; }
      };
      const mute = context.createGain();
      mute.gain.value = 0;  // pulls the graph without playing the microphone back
      source.connect(node).connect(mute).connect(context.destination);
      state.node = node;
      if (context.state === "suspended") await context.resume();
    } catch (e) {
      if (state.context === context) { release(); setPhase("idle"); say("无法处理麦克风声音，无法语音通话。请直接打字或拨打 12329。"); }
      return;
    }
    say("正在接通…");
    openSocket();
  }

  function hangup() {
    if (state.phase === "idle") return;
    state.hangingUp = true;
    stopPlayback();
    if (!sendJson({ hangup: 1 })) { end(ENDED.caller); return; }
    say("正在挂断…");
    // The hotline answers {"type": "hangup"} and closes; if it does not, the call ends here anyway.
    const ws = state.socket;
    setTimeout(function () { if (state.socket === ws && ws) { state.socket = null; ws.close(1000); end(ENDED.caller); } }, 3000);
  }

  function release() {
    stopPlayback();
    if (state.node) { state.node.port.onmessage = null; state.node.disconnect(); state.node = null; }
    if (state.stream) { state.stream.getTracks().forEach(function (t) { t.stop(); }); state.stream = null; }
    if (state.context) { state.context.close(); state.context = null; }
  }

  function end(text) {
    const hadFocus = panel.contains(document.activeElement);
    const ws = state.socket;
    state.socket = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
    release();
    setPhase("idle");
    say(text);
    if (hadFocus) button.focus();  // the call's own buttons are gone: the focus must not be lost with them
  }

  button.addEventListener("click", function () { if (state.phase === "idle") start(); else hangup(); });
  hangupButton.addEventListener("click", hangup);
  padToggle.addEventListener("click", function () {
    const open = keypad.hidden;
    keypad.hidden = !open;
    padToggle.setAttribute("aria-expanded", String(open));
  });
  window.addEventListener("pagehide", function () { if (state.phase !== "idle") { sendJson({ hangup: 1 }); end(ENDED.caller); } });

  window.AnjuCall = { state: state, start: start, hangup: hangup };
})();
