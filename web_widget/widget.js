// Citizen chat widget: WebSocket /ws/chat, falling back to POST /api/chat.
// Custom bot payloads go to window.AnjuHandoff.onCustom(payload, ui) when handoff.js is loaded.
(function () {
  "use strict";
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const status = document.getElementById("status");
  const elderToggle = document.getElementById("elder-toggle");
  const humanButton = document.getElementById("human-button");
  const SESSION_KEY = "anju.sender_id";
  let senderId = sessionStorage.getItem(SESSION_KEY) || "";
  let socket = null;
  let elderMode = sessionStorage.getItem("anju.elder") === "1";

  function addMessage(kind, text, buttons) {
    const item = document.createElement("li");
    item.className = "msg msg--" + kind;
    item.textContent = text || "";
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
    list.appendChild(item);
    item.scrollIntoView({ block: "end" });
    return item;
  }

  const ui = { addMessage: addMessage, send: send, senderId: function () { return senderId; },
               elderMode: function () { return elderMode; } };
  window.AnjuWidget = ui;

  function showReply(messages) {
    (messages || []).forEach(function (m) {
      if (m.text || (m.buttons && m.buttons.length)) addMessage("bot", m.text, m.buttons);
      if (m.custom && window.AnjuHandoff && window.AnjuHandoff.onCustom) window.AnjuHandoff.onCustom(m.custom, ui);
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
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sender_id: ensureSender(), text: text, metadata: metadata() })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      if (res.ok) showReply(res.body.messages); else addMessage("error", res.body.detail || "发送失败，请稍后再试。");
    }).catch(function () { addMessage("error", "网络连接失败，请检查网络后重试。"); });
  }

  function ensureSender() {
    if (!senderId) {
      senderId = "web-" + Math.random().toString(16).slice(2, 18);
      sessionStorage.setItem(SESSION_KEY, senderId);
    }
    return senderId;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/chat?sender_id=" + encodeURIComponent(ensureSender()));
    socket.addEventListener("open", function () { status.textContent = "已连接，请输入您的问题。"; });
    socket.addEventListener("message", function (event) {
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.error) addMessage("error", frame.error);
      if (frame.messages) showReply(frame.messages);
      if (frame.type && window.AnjuHandoff && window.AnjuHandoff.onFrame) window.AnjuHandoff.onFrame(frame, ui);
    });
    socket.addEventListener("close", function () {
      status.textContent = "连接已断开，正在重连…（消息仍可发送）";
      setTimeout(connect, 2000);
    });
  }

  function applyElderMode() {
    document.body.classList.toggle("elder", elderMode);
    elderToggle.setAttribute("aria-pressed", String(elderMode));
    sessionStorage.setItem("anju.elder", elderMode ? "1" : "0");
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
  applyElderMode();
  connect();
})();
