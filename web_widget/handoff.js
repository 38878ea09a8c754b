// Citizen side of the video handoff: the big yes/no offer, queue position (live over
// /ws/handoff/<ticket>), appointment slots, the recording notice the citizen answers before any
// media starts (consent_required -> {type: "consent", agree}), and the video call with a staff member.
// widget.js calls window.AnjuHandoff.onCustom(payload, ui) for every custom bot payload;
// ui = { addMessage(kind, text, buttons), send(text, shown), elderMode() }; the session is a cookie.
// During the call the citizen can enlarge the staff video (the whole screen, Esc or 缩小 returns), turn
// captions on where the server offers them, and leave with one button (挂断). Captions, the server's side
// of issue 18: a handoff frame {type: "captions", available} shows or hides the 字幕 toggle, the toggle
// sends {type: "captions", on}, and lines arrive as {type: "caption", from, text}.
(function () {
  "use strict";
  const STORE = "anju.handoff";
  const state = { phase: "idle", position: null, etaS: null, pc: null, socket: null, ticket: null, ui: null, consent: null,
                  captions: { available: false, on: false } };
  const TEXT_ONLY = "您未同意录像，本次不开启视频。工作人员会用文字和您交流，请在下方输入框留言。";
  // Phases in which a dropped socket reconnects by itself.
  const LIVE_PHASES = ["waiting", "consent", "call", "text"];
  let panel = null;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }

  // Styles are in /static/handoff.css (a stylesheet, not an inline <style>: the CSP allows only 'self').
  function injectCss() {
    if (document.getElementById("anju-handoff-css")) return;
    const link = el("link");
    link.id = "anju-handoff-css";
    link.rel = "stylesheet";
    link.href = "/static/handoff.css";
    document.head.appendChild(link);
  }

  function ensurePanel() {
    if (panel) return panel;
    injectCss();
    panel = el("section", "handoff");
    panel.id = "anju-handoff";
    panel.setAttribute("aria-label", "视频办理");
    panel.innerHTML =
      '<p class="handoff__status" role="status"></p>' +
      '<div class="handoff__videos" hidden>' +
      '  <video id="anju-handoff-remote" autoplay playsinline aria-label="工作人员画面"></video>' +
      '  <video id="anju-handoff-local" autoplay playsinline muted aria-label="我的画面"></video>' +
      '  <div class="handoff__captions" aria-live="polite" aria-label="字幕" hidden></div>' +
      "</div>" +
      '<div class="handoff__actions">' +
      '  <button type="button" class="handoff__cancel">取消排队</button>' +
      '  <button type="button" class="handoff__enlarge" aria-pressed="false" hidden>放大工作人员画面</button>' +
      '  <button type="button" class="handoff__captions-toggle" aria-pressed="false" hidden>打开字幕</button>' +
      '  <button type="button" class="handoff__hangup" hidden>挂断</button>' +
      "</div>";
    panel.querySelector(".handoff__cancel").addEventListener("click", cancel);
    panel.querySelector(".handoff__enlarge").addEventListener("click", toggleLarge);
    panel.querySelector(".handoff__hangup").addEventListener("click", hangUp);
    panel.querySelector(".handoff__captions-toggle").addEventListener("click", toggleCaptions);
    const list = document.getElementById("messages");
    const log = list && (list.closest("[role=log]") || list);  // outside the log: its status is announced once
    if (log) log.parentNode.insertBefore(panel, log); else document.body.appendChild(panel);
    return panel;
  }

  function setStatus(text) { ensurePanel().querySelector(".handoff__status").textContent = text; }

  function removePanel() {
    if (panel) { setLarge(panel, false); panel.remove(); }
    panel = null;
    state.captions = { available: false, on: false };
  }

  // One button for what the citizen can do now: cancel while waiting, enlarge or hang up during a call.
  function showActions(phase) {
    const box = ensurePanel();
    box.querySelector(".handoff__cancel").hidden = phase !== "waiting";
    box.querySelector(".handoff__enlarge").hidden = phase !== "call";
    box.querySelector(".handoff__hangup").hidden = phase !== "call" && phase !== "text";
    box.querySelector(".handoff__captions-toggle").hidden = phase !== "call" || !state.captions.available;
    if (phase !== "call") setLarge(box, false);
  }

  function toggleLarge() {
    const box = ensurePanel();
    setLarge(box, !box.classList.contains("handoff--large"));
    box.querySelector(".handoff__enlarge").focus();
  }

  // Enlarged, the staff video fills the screen (a phone's too) with the buttons under it; the page behind
  // is inert, so keyboard focus stays on what can be seen.
  function setLarge(box, large) {
    box.classList.toggle("handoff--large", large);
    const button = box.querySelector(".handoff__enlarge");
    button.setAttribute("aria-pressed", String(large));
    button.textContent = large ? "缩小工作人员画面" : "放大工作人员画面";
    const behind = Array.prototype.slice.call(box.parentNode ? box.parentNode.children : [])
      .concat(Array.prototype.slice.call(document.querySelectorAll(".chat__header, .skip-link")));
    behind.forEach(function (node) { if (node !== box) node.inert = large; });
  }

  function setCaptionsAvailable(available) {
    state.captions.available = !!available;
    if (!available) showCaptions(false);
    if (panel) showActions(state.phase);
  }

  function showCaptions(on) {
    state.captions.on = on;
    if (!panel) return;
    const button = panel.querySelector(".handoff__captions-toggle");
    button.textContent = on ? "关闭字幕" : "打开字幕";  // the label says what a press does
    button.setAttribute("aria-pressed", String(on));
    const box = panel.querySelector(".handoff__captions");
    box.hidden = !on;
    if (!on) box.replaceChildren();
  }

  function toggleCaptions() {
    const on = !state.captions.on;
    if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify({ type: "captions", on: on }));
    showCaptions(on);
  }

  // The latest three lines, who said them in words.
  function addCaption(from, text) {
    if (!panel || !state.captions.on || !text) return;
    const box = panel.querySelector(".handoff__captions");
    const line = el("p", "handoff__caption", (from === "citizen" ? "我：" : "工作人员：") + text);
    box.appendChild(line);
    while (box.children.length > 3) box.firstChild.remove();
  }

  function hangUp() {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify({ type: "hangup" }));
    if (state.ui) state.ui.addMessage("bot", "您已挂断。需要时可以随时再说“转人工”。");
    finish();
  }

  // Once queued, an earlier video offer must not be clicked again.
  function retireOffers() {
    document.querySelectorAll(".handoff-offer__item").forEach(function (item) { item.remove(); });
  }

  function minutes(s) { return Math.max(1, Math.round((s || 0) / 60)); }

  function offer(payload, ui) {
    injectCss();
    if (state.ticket && LIVE_PHASES.indexOf(state.phase) >= 0) return; // already queued or talking
    const box = el("div", "handoff-offer");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "是否转视频办理");
    const yes = el("button", "handoff-offer__yes", "好，视频办理");
    const no = el("button", "handoff-offer__no", "不用了");
    yes.type = no.type = "button";
    const item = el("li", "handoff-offer__item");  // the list of messages holds list items only
    yes.addEventListener("click", function () { item.remove(); ui.send("/accept_handoff", "好，视频办理"); });
    no.addEventListener("click", function () { item.remove(); ui.send("/decline_handoff", "不用了"); });
    box.append(yes, no);
    item.appendChild(box);
    (document.getElementById("messages") || document.body).appendChild(item);
    yes.focus();
  }

  function booking(payload, ui) {
    const slots = payload.slots || [];
    if (!slots.length) { ui.addMessage("bot", "近期预约已满，请拨打 12329 服务热线预约。"); return; }
    ui.addMessage("bot", "可预约的时间：", slots.map(function (s) { return { title: s.label, payload: s.slot }; }));
    const buttons = document.querySelectorAll("#messages li:last-child .msg__buttons button");
    buttons.forEach(function (btn, i) {
      const fresh = btn.cloneNode(true); // replace the widget's "send as chat" handler
      fresh.addEventListener("click", function () { book(slots[i], ui); });
      btn.replaceWith(fresh);
    });
  }

  function book(slot, ui) {
    fetch("/api/handoff/appointments", {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
      body: JSON.stringify({ slot: slot.slot })
    }).then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (res) { ui.addMessage(res.ok ? "bot" : "error", res.ok ? res.body.text : res.body.detail); })
      .catch(function () { ui.addMessage("error", "预约失败，请检查网络后重试。"); });
  }

  function queued(payload, ui) {
    retireOffers();
    state.ticket = { id: payload.ticket_id, key: payload.key };
    sessionStorage.setItem(STORE, JSON.stringify(state.ticket));
    showQueue(payload.position, payload.eta_s);
    listen(ui);
  }

  function showQueue(position, etaS) {
    removeConsent();
    state.phase = "waiting";
    state.position = position;
    state.etaS = etaS;
    setStatus("正在为您转接工作人员：前面还有 " + Math.max(0, position - 1) + " 位，预计等待约 " + minutes(etaS) + " 分钟。");
    showActions("waiting");
  }

  function listen(ui) {
    state.ui = ui;
    if (state.socket) state.socket.close();
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/handoff/" + encodeURIComponent(state.ticket.id));
    state.socket = socket;
    socket.addEventListener("open", function () { socket.send(JSON.stringify({ key: state.ticket.key })); });
    socket.addEventListener("message", function (event) {
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      onFrame(frame, ui);
    });
    socket.addEventListener("close", function (event) {
      if (state.socket !== socket) return;
      state.socket = null;
      if (event.code === 1008) { finish(); return; }
      if (LIVE_PHASES.indexOf(state.phase) >= 0) setTimeout(function () { listen(ui); }, 2000);
    });
  }

  function onFrame(frame, ui) {
    if (frame.type === "queue") showQueue(frame.position, frame.eta_s);
    else if (frame.type === "consent_required") askConsent(frame.text);
    else if (frame.type === "active") onActive(frame.consent);
    else if (frame.type === "call") {
      if ("captions" in frame) setCaptionsAvailable(frame.captions);
      call(frame.room_token, frame.ice_servers || [], ui);
    } else if (frame.type === "captions") {
      // Either side may turn captions on or off: both pages follow the room's state.
      setCaptionsAvailable(frame.available);
      if (frame.available && "on" in frame && !!frame.on !== state.captions.on) showCaptions(!!frame.on);
    }
    else if (frame.type === "caption") addCaption(frame.from, frame.text);
    else if (frame.type === "message") {
      if (frame.from === "staff") ui.addMessage("staff", "工作人员：" + frame.text);  // the label is text, not CSS
      else if (frame.from === "system") ui.addMessage("bot", frame.text);
    } else if (frame.type === "ended" || frame.type === "cancelled") finish();
  }

  // The recording notice: nothing is sent from camera or microphone before the citizen agrees.
  function askConsent(text) {
    state.phase = "consent";
    const box = ensurePanel();
    showActions("consent");
    removeConsent();
    const consent = el("div", "handoff__consent");
    consent.setAttribute("role", "group");
    consent.setAttribute("aria-label", "录音录像告知");
    const notice = el("p", "handoff__consent-text", text);
    const yes = el("button", "handoff__agree", "同意并开始视频");
    const no = el("button", "handoff__decline", "不同意（只用文字交流）");
    yes.type = no.type = "button";
    yes.addEventListener("click", function () { answerConsent(true); });
    no.addEventListener("click", function () { answerConsent(false); });
    consent.append(notice, yes, no);
    box.insertBefore(consent, box.querySelector(".handoff__videos"));
    setStatus("工作人员已接入。开始视频前，请阅读以下说明：");
    yes.focus();
  }

  function answerConsent(agree) {
    if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
      setStatus("网络连接中断，正在重新连接，请稍后再选择。");
      return;
    }
    state.socket.send(JSON.stringify({ type: "consent", agree: agree }));
    removeConsent();
    onActive(agree);
  }

  function removeConsent() {
    const box = panel && panel.querySelector(".handoff__consent");
    if (box) box.remove();
  }

  function onActive(consent) {
    state.consent = consent;
    if (consent === null || consent === undefined) return; // the notice is on screen until answered
    const box = ensurePanel();
    if (consent === false) {
      state.phase = "text";
      showActions("text");
      closePeer();
      box.querySelector(".handoff__videos").hidden = true;
      setStatus(TEXT_ONLY);
    } else if (state.phase !== "call") {
      showActions("consent");
      setStatus("工作人员已接入，正在连接视频…");
    }
  }

  function waitForIce(pc) {
    // Production networks can stall gathering: send what we have after 3 s.
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") return resolve();
      const done = function () { if (pc.iceGatheringState === "complete") resolve(); };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 3000);
    });
  }

  async function call(token, iceServers, ui) {
    removeConsent();
    state.phase = "call";
    const box = ensurePanel();
    showActions("call");
    box.querySelector(".handoff__videos").hidden = false;
    closePeer();
    const pc = new RTCPeerConnection({ iceServers: iceServers });
    state.pc = pc;
    pc.addEventListener("track", function (event) {
      const remote = document.getElementById("anju-handoff-remote");
      if (!remote.srcObject) remote.srcObject = new MediaStream();
      remote.srcObject.addTrack(event.track);
    });
    pc.addEventListener("connectionstatechange", function () {
      if (pc.connectionState === "connected") setStatus("已接通工作人员，请对着摄像头说话。");
      if ((pc.connectionState === "failed" || pc.connectionState === "disconnected") && state.pc === pc) {
        setStatus("视频连接中断，正在重新连接…");
        setTimeout(function () {
          if (state.pc === pc && state.socket) state.socket.send(JSON.stringify({ type: "rejoin" }));
        }, 2000);
      }
    });
    try {
      const media = await navigator.mediaDevices.getUserMedia({
        audio: true, video: { width: 640, height: 480, frameRate: 15 } });
      media.getTracks().forEach(function (t) { pc.addTrack(t, media); });
      document.getElementById("anju-handoff-local").srcObject = media;
    } catch (e) {
      setStatus("无法打开摄像头或麦克风，工作人员仍能和您文字交流。");
      pc.addTransceiver("audio", { direction: "recvonly" });
      pc.addTransceiver("video", { direction: "recvonly" });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc);
    const res = await fetch("/api/video/offer", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: token, sdp: pc.localDescription.sdp, type: pc.localDescription.type })
    });
    const body = await res.json();
    if (!res.ok) { setStatus(body.detail || "视频连接失败。"); return; }
    await pc.setRemoteDescription(body);
  }

  function closePeer() {
    if (!state.pc) return;
    state.pc.getSenders().forEach(function (s) { if (s.track) s.track.stop(); });
    state.pc.close();
    state.pc = null;
  }

  function cancel() {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify({ type: "cancel" }));
    else if (state.ticket) {
      fetch("/api/handoff/" + encodeURIComponent(state.ticket.id) + "/cancel", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ key: state.ticket.key })
      });
    }
    if (state.ui) state.ui.addMessage("bot", "已取消排队。需要时可以随时再说“转人工”。");
    finish();
  }

  function finish() {
    state.phase = "ended";
    closePeer();
    sessionStorage.removeItem(STORE);
    const socket = state.socket;
    state.socket = null;
    if (socket) socket.close();
    removePanel();
  }

  function onCustom(payload, ui) {
    if (!payload || typeof payload !== "object") return false;
    if (payload.type === "handoff_offer") offer(payload, ui);
    else if (payload.type === "handoff_queued") queued(payload, ui);
    else if (payload.type === "handoff_booking") booking(payload, ui);
    else return false;
    return true;
  }

  // A reload keeps the place: the ticket is kept for the page session and the queue for 2 minutes.
  function resume() {
    const saved = sessionStorage.getItem(STORE);
    if (!saved || !window.AnjuWidget) return;
    try { state.ticket = JSON.parse(saved); } catch (e) { return; }
    state.phase = "waiting";
    setStatus("正在恢复排队…");
    listen(window.AnjuWidget);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && panel && panel.classList.contains("handoff--large")) toggleLarge();
  });
  window.AnjuHandoff = { onCustom: onCustom, onFrame: function () {}, state: state };
  resume();
})();
