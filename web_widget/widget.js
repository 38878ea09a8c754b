// Citizen chat widget: WebSocket /ws/chat, falling back to POST /api/chat.
// The session lives in an HttpOnly cookie the gateway sets (POST /api/session/web); this script
// never sees a session id or the bot's sender id. After identity verification the gateway asks
// for a rotation (a new cookie over HTTP), then the socket reconnects with it.
// Custom bot payloads go to window.AnjuHandoff.onCustom(payload, ui) when handoff.js is loaded.
// Elder mode (large text and targets, quick replies, a video button, short answers from the bot via
// metadata elder_mode) is remembered on this device in localStorage. Every bot line gets a 朗读 button
// from reader.js (window.AnjuReader), and any new line stops what is being read.
(function () {
  "use strict";
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const status = document.getElementById("status");
  const elderToggle = document.getElementById("elder-toggle");
  const humanButton = document.getElementById("human-button");
  const logoutButton = document.getElementById("logout-button");
  const videoButton = document.getElementById("video-button");
  const quickReplies = document.getElementById("quick-replies");
  const ELDER_KEY = "anju.elder";
  // The video offer draws its own large buttons (handoff.js): the same choices as plain buttons would show twice.
  const OFFER_PAYLOADS = ["/accept_handoff", "/decline_handoff"];
  let socket = null;
  let ending = false;
  let elderMode = readElderMode();

  function readElderMode() {
    try { return localStorage.getItem(ELDER_KEY) === "1"; } catch (e) { return false; }
  }

  function addMessage(kind, text, buttons) {
    const item = document.createElement("li");
    item.className = "msg msg--" + kind;
    item.textContent = text || "";
    const reader = window.AnjuReader;
    if (reader) reader.onMessage(kind);
    if (buttons && buttons.length) {
      const row = document.createElement("div");
      row.className = "msg__buttons";
      buttons.forEach(function (b) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = b.title;
        btn.addEventListener("click", function () { send(b.payload, b.title); });
        row.appendChild(btn);
      });
      item.appendChild(row);
    }
    if (reader && kind === "bot" && text) reader.decorate(item, text);
    list.appendChild(item);
    item.scrollIntoView({ block: "end" });
    return item;
  }

  const ui = { addMessage: addMessage, send: send, elderMode: function () { return elderMode; } };
  window.AnjuWidget = ui;

  function showReply(messages) {
    messages = messages || [];
    const offered = messages.some(function (m) { return m.custom && m.custom.type === "handoff_offer"; });
    messages.forEach(function (m) {
      const buttons = (m.buttons || []).filter(function (b) { return !(offered && OFFER_PAYLOADS.indexOf(b.payload) >= 0); });
      if (m.text || buttons.length) addMessage("bot", m.text, buttons);
      if (m.custom && window.AnjuHandoff && window.AnjuHandoff.onCustom) window.AnjuHandoff.onCustom(m.custom, ui);
      if (m.custom) (window.AnjuCustom || []).forEach(function (handle) { handle(m.custom, ui); });  // e.g. uploads.js
    });
  }

  function metadata() { return elderMode ? { elder_mode: true } : {}; }

  function send(text, shown) {
    text = (text || "").trim();
    if (!text) { status.textContent = "请输入内容后再发送。"; return; }
    addMessage("user", shown || text);
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ text: text, metadata: metadata() }));
      return;
    }
    fetch("/api/chat", {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
      body: JSON.stringify({ text: text, metadata: metadata() })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      if (res.ok) showReply(res.body.messages); else addMessage("error", res.body.detail || "发送失败，请稍后再试。");
    }).catch(function () { addMessage("error", "网络连接失败，请检查网络后重试。"); });
  }

  function post(path) {
    return fetch(path, { method: "POST", credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    });
  }

  // A valid cookie session first (kept if it exists), then the socket, which carries the cookie.
  function start() {
    post("/api/session/web").then(function (res) {
      if (!res.ok) throw new Error("session");
      connect();
    }).catch(function () {
      status.textContent = "暂时无法连接，正在重试…";
      setTimeout(start, 3000);
    });
  }

  function reconnect() {
    if (socket) { socket.onclose = null; socket.close(); socket = null; }
    start();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws/chat");
    socket = ws;
    ws.addEventListener("open", function () { status.textContent = "已连接，请输入您的问题。"; fetchNotices(); });
    ws.addEventListener("message", function (event) {
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "session") { if (frame.renew) reconnect(); return; }
      if (frame.type === "session_rotate") {
        // Identity verified: a new session id, set as a cookie over HTTP, then a socket that carries it.
        post("/api/session/rotate").then(reconnect, reconnect);
        return;
      }
      if (frame.error && !frame.reconnect) addMessage("error", frame.error);
      if (frame.messages) showReply(frame.messages);
      if (frame.type && window.AnjuHandoff && window.AnjuHandoff.onFrame) window.AnjuHandoff.onFrame(frame, ui);
    });
    ws.onclose = function () {
      if (socket !== ws || ending) return;
      status.textContent = "连接已断开，正在重连…（消息仍可发送）";
      setTimeout(reconnect, 2000);
    };
  }

  function logout() {
    ending = true;
    if (socket) { socket.onclose = null; socket.close(); socket = null; }
    post("/api/session/end").then(function (res) {
      addMessage("bot", (res.body && res.body.text) || "您已退出。");
    }).catch(function () {
      addMessage("error", "退出时网络异常，请关闭页面以确保安全。");
    }).then(function () {
      ending = false;
      start();  // a fresh, unverified session for whoever uses this page next
    });
  }

  function applyElderMode() {
    document.body.classList.toggle("elder", elderMode);
    elderToggle.setAttribute("aria-pressed", String(elderMode));
    try { localStorage.setItem(ELDER_KEY, elderMode ? "1" : "0"); } catch (e) { /* private mode: this visit only */ }
  }

  // Notices of the citizen's online applications (审批通过, 未通过 and why, 已到账…), fetched and cleared
  // every 20 s while the chat is open and shown as bot lines; a hidden tab fetches them when shown again.
  const NOTICE_EVERY_MS = 20000;
  function fetchNotices() {
    if (ending || document.hidden) return;
    fetch("/api/notices", { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.json() : { notices: [] };
    }).then(function (body) {
      (body.notices || []).forEach(function (n) { if (n.text) addMessage("bot", n.text); });
    }).catch(function () { /* offline for now: the next look brings them */ });
  }

  // The widget's own video button: the same queue as the bot's handoff, with the elder's priority claim.
  function requestVideo() {
    videoButton.disabled = true;
    fetch("/api/handoff", {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
      body: JSON.stringify({ elder_mode: elderMode })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      if (res.ok) showReply(res.body.messages); else addMessage("error", res.body.detail || "暂时无法转接，请稍后再试。");
    }).catch(function () {
      addMessage("error", "网络连接失败，请检查网络后重试。");
    }).then(function () { videoButton.disabled = false; });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value;
    input.value = "";
    send(text);
    input.focus();
  });
  elderToggle.addEventListener("click", function () { elderMode = !elderMode; applyElderMode(); });
  humanButton.addEventListener("click", function () { send("转人工"); });
  logoutButton.addEventListener("click", logout);
  videoButton.addEventListener("click", requestVideo);
  quickReplies.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-ask]");
    if (button) send(button.dataset.ask);
  });
  document.addEventListener("visibilitychange", fetchNotices);
  setInterval(fetchNotices, NOTICE_EVERY_MS);
  applyElderMode();
  start();
})();
