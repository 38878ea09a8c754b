// Staff console: login (password + TOTP), live queue, accept, video call, transcript, chat, the
// citizen's answer to the recording notice, end with an internal note and a summary for the citizen
// (previewed as the citizen will read it); supervisors also see today's figures. The session token
// lives in sessionStorage only. In a call the citizen's video can be enlarged, and captions turned on
// where the server offers them (issue 18: the accept answer's captions_available, message events
// {event: "captions", available} and {event: "caption", from, text}, POST .../captions {on}).
// Reviewers (and supervisors) get a second tab, 在线申请审核: the open online withdrawal applications,
// one in detail (steps, fetched and uploaded materials, signature hash), 通过 / 驳回 with a reason.
(function () {
  "use strict";
  const $ = function (id) { return document.getElementById(id); };
  const state = { token: sessionStorage.getItem("anju.staff.token") || "", role: sessionStorage.getItem("anju.staff.role") || "",
                  ticket: null, pc: null, after: "0", timers: [], consent: null, captions: { available: false, on: false } };
  const CONSENT = { pending: "等待市民确认录像告知…", agreed: "市民已同意录像", declined: "市民未同意录像：请用文字交流" };
  // The case card in words a clerk reads: the bot's slot names and values, never raw internal fields.
  const SLOT_LABELS = { city: "缴存城市", elderly: "60岁以上老人", disabled: "残障人士", verified: "身份已核验", faq_topic: "咨询的问题" };
  const CHANNELS = { web: "网页", wechat: "微信", voice: "电话" };
  // Titles of the FAQ topics (fund/policy/faq/*.yml; tests/unit/test_console_labels.py keeps them in step).
  const TOPICS = {account_freeze: "账户冻结", account_info_change: "个人信息变更", account_merge: "多个账户合并",
    account_password: "查询密码与登录", account_seal: "账户封存与启封", channel_face_verification: "人脸识别与电子签名",
    channel_hotline: "服务热线与服务时间", channel_online: "线上办理渠道", channel_proofs: "免提交的证明材料", deposit_back_pay: "补缴公积金",
    deposit_employer: "单位缴存登记与单位责任", deposit_flexible: "灵活就业人员自愿缴存", deposit_interest: "公积金存款利息",
    deposit_ratio: "缴存比例与缴存基数", loan_combination: "组合贷款", loan_commercial_to_fund: "商业贷款转公积金贷款（商转公）",
    loan_conditions: "公积金贷款条件", loan_limit: "公积金贷款额度", loan_materials: "公积金贷款申请材料", loan_other_city: "异地贷款",
    loan_prepayment: "提前还款", loan_rate: "公积金贷款利率", loan_repayment: "公积金贷款还款方式与月供", loan_review_time: "公积金贷款审批时间",
    loan_term: "公积金贷款期限", transfer_city: "异地转移接续", withdraw_arrival: "提取审批和到账时间", withdraw_hardship: "生活困难、低保提取",
    withdraw_illness: "大病医疗提取", withdraw_leave_job: "离职、封存、出境定居提取", withdraw_loan_repayment: "还贷提取",
    withdraw_overview: "哪些情况可以提取公积金", withdraw_property_fee: "物业费提取", withdraw_purchase: "购房提取",
    withdraw_renovation: "装修（含加装电梯）提取", withdraw_rent: "租房提取", withdraw_retirement: "退休提取" };
  window.AnjuConsole = state;

  function api(method, path, body) {
    return fetch(path, {
      method: method,
      headers: Object.assign({ "Content-Type": "application/json" }, state.token ? { Authorization: "Bearer " + state.token } : {}),
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (b) {
        if (r.status === 401 && state.token) logout();
        if (!r.ok) {
          const error = new Error(b.detail || "请求失败（" + r.status + "）");
          error.status = r.status;
          throw error;
        }
        return b;
      });
    });
  }

  function notice(text) { $("notice").textContent = text || ""; }
  function li(text, cls) { const n = document.createElement("li"); n.textContent = text; if (cls) n.className = cls; return n; }

  function showDesk() {
    $("login").hidden = true;
    $("desk").hidden = false;
    $("logout").hidden = false;
    $("who").textContent = sessionStorage.getItem("anju.staff.name") || "";
    $("stats").hidden = state.role !== "supervisor";
    every(2000, refreshQueue);
    if (state.role === "supervisor") every(10000, refreshStats);
    if (REVIEW_ROLES.indexOf(state.role) >= 0) setupReview();
  }

  function every(ms, fn) { fn(); state.timers.push(setInterval(fn, ms)); }

  function logout() {
    if (state.token) api("POST", "/api/staff/logout").catch(function () {});
    state.timers.forEach(clearInterval);
    sessionStorage.clear();
    location.reload();
  }

  function refreshQueue() {
    if ($("desk").hidden) return;  // a reviewer on the review tab is not counted as waiting for video calls
    api("GET", "/api/staff/queue").then(function (q) {
      $("queue-count").textContent = "（" + q.waiting.length + " 人）" + (q.open ? "" : " · 非服务时间");
      const list = $("queue");
      list.replaceChildren.apply(list, q.waiting.map(function (t) {
        const item = li("");
        const info = document.createElement("span");
        info.textContent = (t.priority ? "【优先】" : "") + t.reason + " · " + (CHANNELS[t.channel] || "其他") + " · 已等 " + Math.round(t.waited_s / 60) + " 分钟";
        if (t.priority) info.className = "priority";
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = "接待";
        btn.disabled = !!state.ticket;
        btn.dataset.ticket = t.ticket_id;
        btn.addEventListener("click", function () { accept(t.ticket_id); });
        item.append(info, btn);
        return item;
      }));
    }).catch(function (e) { notice(e.message); });
  }

  // Hotline callers' call-back appointments: loaded on demand (each read is audited; the numbers are in clear).
  function refreshCallbacks() {
    api("GET", "/api/staff/callbacks").then(function (r) {
      const list = $("callbacks");
      list.replaceChildren.apply(list, r.callbacks.length ? r.callbacks.map(function (c) {
        return li(c.label + " · 回电 " + c.phone + " · " + (CHANNELS[c.channel] || "其他"));
      }) : [li("暂无回电预约。")]);
    }).catch(function (e) { notice(e.message); });
  }

  function accept(ticketId) {
    api("POST", "/api/staff/tickets/" + ticketId + "/accept").then(function (r) {
      state.ticket = r.ticket;
      state.after = "0";
      state.consent = "pending"; // the message replay below brings an answer given before a requeue
      showConsent();
      $("call").hidden = false;
      $("chat").replaceChildren();
      clearCaptionRecord();
      renderCase(r.ticket);
      setLarge(false);
      showPhoneCall(r.ticket.channel === "voice");
      setCaptionsAvailable(!!r.captions_available);
      $("transcript").replaceChildren.apply($("transcript"), r.transcript.map(function (l) {
        return li((l.from === "bot" ? "机器人：" : "市民：") + l.text, "from-" + l.from);
      }));
      if (!r.transcript_available) $("transcript").append(li("对话记录暂时无法获取。", "from-system"));
      if (!state.polling) state.polling = setInterval(pollMessages, 1000);
      return join(r.room_token, r.ice_servers || []);
    }).catch(function (e) { notice(e.message); });
  }

  function renderCase(card) {
    const rows = [["排队原因", card.reason], ["渠道", CHANNELS[card.channel] || "其他"], ["工单", card.ticket_id],
                  ["优先", card.priority ? "是" : "否"], ["录像同意", CONSENT[state.consent] || CONSENT.pending]];
    Object.keys(card.slots || {}).forEach(function (k) {
      if (SLOT_LABELS[k]) rows.push([SLOT_LABELS[k], slotValue(k, card.slots[k])]);
    });
    $("case").replaceChildren.apply($("case"), rows.flatMap(function (r) {
      const dt = document.createElement("dt"); dt.textContent = r[0];
      const dd = document.createElement("dd"); dd.textContent = r[1];
      return [dt, dd];
    }));
  }

  function slotValue(name, value) {
    if (name === "faq_topic") return TOPICS[value] || "其他问题";
    if (value === "True" || value === true) return "是";
    if (value === "False" || value === false) return "否";
    return String(value);
  }

  function waitForIce(pc) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.addEventListener("icegatheringstatechange", function () { if (pc.iceGatheringState === "complete") resolve(); });
      setTimeout(resolve, 3000);
    });
  }

  // A hotline caller: an audio-only session (the gateway bridges the phone call into the room), no camera.
  function isPhoneCall() { return !!(state.ticket && state.ticket.channel === "voice"); }

  function showPhoneCall(phone) {
    $("call-title").textContent = phone ? "电话服务（语音通话）" : "视频服务";
    $("local").hidden = phone;
    $("enlarge").hidden = phone;
    $("remote").setAttribute("aria-label", phone ? "市民的声音" : "市民画面");
  }

  async function join(token, iceServers) {
    closePeer();
    const pc = new RTCPeerConnection({ iceServers: iceServers });
    state.pc = pc;
    pc.addEventListener("track", function (event) {
      const remote = $("remote");
      if (!remote.srcObject) remote.srcObject = new MediaStream();
      remote.srcObject.addTrack(event.track);
    });
    pc.addEventListener("connectionstatechange", function () {
      $("call-status").textContent = { connected: "已接通", connecting: "连接中…", failed: "连接中断，正在重连…",
                                       disconnected: "连接不稳定…" }[pc.connectionState] || "";
      if (pc.connectionState === "failed" && state.pc === pc && state.ticket) rejoin();
    });
    try {
      const phone = isPhoneCall();
      const media = await navigator.mediaDevices.getUserMedia(
        { audio: true, video: phone ? false : { width: 640, height: 480, frameRate: 15 } });
      media.getTracks().forEach(function (t) { pc.addTrack(t, media); });
      $("local").srcObject = media;
    } catch (e) {
      pc.addTransceiver("audio", { direction: "recvonly" });
      if (!isPhoneCall()) pc.addTransceiver("video", { direction: "recvonly" });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc);
    const answer = await api("POST", "/api/video/offer", { token: token, sdp: pc.localDescription.sdp, type: "offer" });
    await pc.setRemoteDescription(answer);
  }

  function rejoin() {
    api("POST", "/api/staff/tickets/" + state.ticket.ticket_id + "/room-token")
      .then(function (r) { return join(r.room_token, []); }).catch(function (e) { notice(e.message); });
  }

  function closePeer() {
    if (!state.pc) return;
    state.pc.getSenders().forEach(function (s) { if (s.track) s.track.stop(); });
    state.pc.close();
    state.pc = null;
  }

  function showConsent() {
    const status = $("consent-status");
    status.textContent = CONSENT[state.consent] || "";
    status.className = state.consent === "declined" ? "declined" : "";
    if (state.ticket) renderCase(state.ticket);
  }

  function pollMessages() {
    const ticket = state.ticket;
    if (!ticket) return;
    api("GET", "/api/staff/tickets/" + ticket.ticket_id + "/messages?after=" + encodeURIComponent(state.after))
      .then(function (r) {
        r.messages.forEach(function (m) {
          state.after = m.id;
          if (m.event === "consent") { state.consent = m.consent; showConsent(); }
          if (m.event === "captions") {  // stream fields are strings: "1" / "0"; either side may toggle
            setCaptionsAvailable(m.available === "1");
            if (m.available === "1" && (m.on === "1") !== state.captions.on) showCaptions(m.on === "1");
            return;
          }
          if (m.event === "caption") { addCaption(m.from, m.text); recordCaption(m); return; }
          const who = { citizen: "市民：", staff: "我：", system: "" }[m.from] || "";
          $("chat").append(li(who + m.text, "from-" + m.from));
        });
        // Ended while ours and not by our own 结束服务: the citizen hung up.
        if (r.state === "ended" && state.ticket === ticket && !state.ending) leaveCall("市民已挂断，本次服务已结束。");
      }).catch(function (e) {
        // The ticket is no longer ours: staff did not join in time or dropped, and the citizen was requeued.
        if (e.status === 404) leaveCall("该市民已重新排队（视频未接通或连接中断），请从队列重新接待。");
      });
  }

  // What the citizen will read when the service ends (gateway.handoff.desk.citizen_summary, before masking).
  function citizenSummary(summary) {
    const text = summary.trim().slice(0, 500).replace(/[。.]+$/, "");
    return "人工视频服务已结束。" + (text ? "小结：" + text + "。" : "") + "如还有问题，可以继续向智能助手提问。";
  }

  function showPreview() { $("summary-preview").textContent = citizenSummary($("summary").value); }

  function setLarge(large) {
    $("videos").classList.toggle("videos--large", large);
    $("enlarge").setAttribute("aria-pressed", String(large));
    $("enlarge").textContent = large ? "缩小市民画面" : "放大市民画面";
  }

  function setCaptionsAvailable(available) {
    state.captions.available = available;
    $("captions-toggle").hidden = !available;
    if (!available) showCaptions(false);
  }

  function showCaptions(on) {
    state.captions.on = on;
    $("captions-toggle").textContent = on ? "关闭字幕" : "打开字幕";  // the label says what a press does
    $("captions-toggle").setAttribute("aria-pressed", String(on));
    $("captions").hidden = !on;
    if (!on) $("captions").replaceChildren();
  }

  function toggleCaptions() {
    const on = !state.captions.on;
    if (state.ticket) {
      api("POST", "/api/staff/tickets/" + state.ticket.ticket_id + "/captions", { on: on }).catch(function (e) { notice(e.message); });
    }
    showCaptions(on);
  }

  function addCaption(from, text) {
    if (!state.captions.on || !text) return;
    const line = document.createElement("p");
    line.textContent = (from === "staff" ? "我：" : "市民：") + text;
    $("captions").append(line);
    while ($("captions").children.length > 3) $("captions").firstChild.remove();
  }

  // The session's caption transcript (stored masked with the session: GET .../captions), beside the note and
  // summary; the message replay on accept refills it. The time comes from the stream id (ms since the epoch).
  function recordCaption(m) {
    const list = $("captions-record");
    const at = new Date(parseInt(String(m.id).split("-")[0], 10));
    const time = isNaN(at) ? "" : at.toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }) + " ";
    list.append(li(time + (m.from === "staff" ? "我：" : "市民：") + m.text, "from-" + m.from));
    list.hidden = false;
    $("captions-record-title").hidden = false;
  }

  function captionRecordSection() {
    const title = document.createElement("h3");
    title.id = "captions-record-title";
    title.textContent = "字幕记录（证件号、手机号已打码）";
    const list = document.createElement("ol");
    list.id = "captions-record";
    list.className = "log";
    list.tabIndex = 0;
    list.setAttribute("aria-labelledby", "captions-record-title");
    title.hidden = list.hidden = true;
    $("closing").before(title, list);
  }

  function clearCaptionRecord() {
    $("captions-record").replaceChildren();
    $("captions-record").hidden = $("captions-record-title").hidden = true;
  }

  function leaveCall(text) {
    setLarge(false);
    clearCaptionRecord();
    setCaptionsAvailable(false);
    closePeer();
    state.ticket = null;
    state.consent = null;
    $("note").value = "";
    $("summary").value = "";
    showPreview();
    showConsent();
    $("call").hidden = true;
    $("remote").srcObject = null;
    notice(text);
  }

  function end() {
    if (!state.ticket) return;
    state.ending = true;
    api("POST", "/api/staff/tickets/" + state.ticket.ticket_id + "/end", { note: $("note").value, summary: $("summary").value })
      .then(function () { leaveCall("服务已结束，录像已存档。"); })
      .catch(function (e) { notice(e.message); })
      .then(function () { state.ending = false; });
  }

  function refreshStats() {
    api("GET", "/api/staff/stats").then(function (s) {
      const pct = function (v) { return v === null ? "—" : Math.round(v * 100) + "%"; };
      const rows = [["咨询人数", s.chats], ["转人工", s.handoffs], ["已接待", s.accepted],
                    ["平均等待", s.average_wait_s === null ? "—" : s.average_wait_s + " 秒"],
                    ["机器人独立解决率", pct(s.containment_rate)], ["正在排队", s.waiting_now]];
      $("figures").replaceChildren.apply($("figures"), rows.flatMap(function (r) {
        const dt = document.createElement("dt"); dt.textContent = r[0];
        const dd = document.createElement("dd"); dd.textContent = String(r[1]);
        return [dt, dd];
      }));
      $("unanswered").replaceChildren.apply($("unanswered"), s.top_unanswered.map(function (q) { return li(q.text + "（" + q.count + " 次）"); }));
    }).catch(function (e) { notice(e.message); });
  }


  // --- 在线申请审核 (reviewers and supervisors): the core's review API through /api/staff/review ---
  const REVIEW_ROLES = ["reviewer", "supervisor"];
  const REVIEW_API = "/api/staff/review/applications";
  const REASON_MIN = 2, REASON_MAX = 150;
  const review = { current: null, busy: false };

  function chinaTime(iso) {
    if (!iso) return "—";
    const at = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z");  // the core's times are UTC
    return isNaN(at) ? iso : at.toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
  }

  function yuan(v) { return typeof v === "number" ? v.toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : "—"; }

  // The materials of an application: materials.fetched (shared data) and the items to be supplied, which
  // the upload service (fund/materials.py) lists in `uploads` [{key, name, status, status_name, notes, sha256,
  // fields, uploaded_at}], the file behind .../materials/<key>/file; without it, materials.to_upload names them.
  function materialsOf(app) {
    const m = app.materials || {};
    if (Array.isArray(app.uploads)) return { fetched: m.fetched || [], uploads: app.uploads, toUpload: [] };
    return { fetched: m.fetched || [], uploads: [], toUpload: m.to_upload || [] };
  }

  function hasFile(u) { return !!(u.key && (u.sha256 || u.uploaded_at)); }

  function toLookAt(app) {
    const mats = materialsOf(app);
    const parts = mats.uploads.map(function (u) { return u.name + "（" + (u.status_name || u.status) + "）"; });
    if (mats.toUpload.length) parts.push("待补充：" + mats.toUpload.join("、"));
    return parts.length ? parts.join("；") : "无（材料均已从共享数据获取）";
  }

  const COLUMNS = ["申请编号", "类型", "金额（元）", "提交时间", "申请人", "状态", "需查看的材料", "操作"];
  function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }

  function refreshReview() {
    return api("GET", REVIEW_API + "?status=" + encodeURIComponent($("review-filter").value)).then(function (r) {
      const apps = r.applications || [];
      $("review-count").textContent = "（" + apps.length + " 件）";
      $("review-empty").hidden = apps.length > 0;
      const body = $("review-list");
      body.replaceChildren.apply(body, apps.map(function (a) {
        const row = document.createElement("tr");
        row.dataset.application = a.id;
        if (review.current && review.current.id === a.id) row.className = "selected";
        const person = a.person ? a.person.name_masked + "（" + a.person.id_masked + "）" : "—";
        const open = document.createElement("button");
        open.type = "button";
        open.textContent = "查看";
        open.setAttribute("aria-label", "查看申请 " + a.id);
        open.addEventListener("click", function () { showApplication(a.id); });
        const actions = document.createElement("td");
        actions.append(open);
        row.append(cell(a.id), cell(a.kind_name), cell(yuan(a.amount)), cell(chinaTime(a.submitted_at)), cell(person),
                   cell(a.status_name || a.status), cell(toLookAt(a)), actions);
        Array.prototype.forEach.call(row.children, function (td, i) { td.dataset.label = COLUMNS[i]; });  // narrow screens
        return row;
      }));
    }).catch(function (e) { notice(e.message); });
  }

  function facts(dl, rows) {
    dl.replaceChildren.apply(dl, rows.flatMap(function (r) {
      const dt = document.createElement("dt"); dt.textContent = r[0];
      const dd = document.createElement("dd"); dd.textContent = r[1] === null || r[1] === undefined || r[1] === "" ? "—" : String(r[1]);
      return [dt, dd];
    }));
  }

  function showApplication(id) {
    return api("GET", REVIEW_API + "/" + encodeURIComponent(id)).then(function (a) {
      review.current = a;
      hideReject();
      const person = a.person || {};
      facts($("detail-facts"), [["申请编号", a.id], ["提取类型", a.kind_name], ["申请金额（元）", yuan(a.amount)],
        ["申请人", (person.name_masked || "—") + "（" + (person.id_masked || "—") + "）"], ["申请渠道", a.channel],
        ["提交时间", chinaTime(a.submitted_at)], ["当前状态", a.status_name || a.status], ["未通过原因", a.reason],
        ["材料齐全（免提交）", a.complete ? "是" : "否"]]);
      $("detail-title").textContent = "申请详情：" + a.id;
      $("detail-steps").replaceChildren.apply($("detail-steps"), (a.steps || []).map(function (st) {
        return li(st.name + " · " + (st.done_at ? chinaTime(st.done_at) : "待办理") + (st.note ? " · " + st.note : ""));
      }));
      const mats = materialsOf(a);
      $("detail-fetched").replaceChildren.apply($("detail-fetched"), mats.fetched.length ? mats.fetched.map(function (m) {
        return li(m.name + "：" + (m.summary || "已获取"));
      }) : [li("无", "muted")]);
      renderUploads(a, mats);
      const sig = a.signature || {};
      facts($("detail-signature"), [["签名记录 SHA-256", sig.sha256], ["签署时间", chinaTime(sig.signed_at)],
        ["声明版本", sig.declaration_version], ["收款银行卡", (sig.bank_name || "") + " " + (sig.card_masked || "")],
        ["审计序号", sig.audit_seq]]);
      const open = a.status === "submitted" || a.status === "under_review";
      $("review-start").hidden = a.status !== "submitted";
      $("review-approve").hidden = !open;
      $("review-reject").hidden = !open;
      $("review-detail").hidden = false;
      $("review-detail").focus();
      refreshSelection();
    }).catch(function (e) { notice(e.message); });
  }

  function renderUploads(a, mats) {
    const list = $("detail-uploads");
    const items = mats.uploads.map(function (u) {
      const fields = Object.keys(u.fields || {}).map(function (k) { return k + "：" + u.fields[k]; }).join("，");
      const item = li(u.name + "（" + (u.status_name || u.status) + "）" + (u.notes ? "：" + u.notes : "") +
                      (fields ? "。识别结果：" + fields : "") + (u.uploaded_at ? "。上传于 " + chinaTime(u.uploaded_at) : "") +
                      (u.sha256 ? "。SHA-256 " + u.sha256.slice(0, 16) + "…" : ""));
      if (hasFile(u)) {
        const view = document.createElement("button");
        view.type = "button";
        view.textContent = "查看文件";
        view.setAttribute("aria-label", "查看文件：" + u.name);
        view.addEventListener("click", function () { openMaterial(a.id, u.key); });
        item.append(" ", view);
      }
      return item;
    });
    mats.toUpload.forEach(function (name) { items.push(li(name + "：待补充（市民尚未上传）", "muted")); });
    list.replaceChildren.apply(list, items.length ? items : [li("无", "muted")]);
  }

  function openMaterial(id, key) {
    // The file needs the staff token, so it is fetched here and shown from a blob (never cached by the browser).
    const tab = window.open("", "_blank");
    fetch(REVIEW_API + "/" + encodeURIComponent(id) + "/materials/" + encodeURIComponent(key) + "/file",
          { headers: { Authorization: "Bearer " + state.token } }).then(function (r) {
      if (!r.ok) return r.json().catch(function () { return {}; }).then(function (b) { throw new Error(b.detail || "无法打开材料文件。"); });
      return r.blob();
    }).then(function (blob) {
      const url = URL.createObjectURL(blob);
      if (tab) tab.location = url; else window.open(url, "_blank");
      setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
    }).catch(function (e) { if (tab) tab.close(); notice(e.message); });
  }

  function refreshSelection() {
    Array.prototype.forEach.call($("review-list").children, function (row) {
      row.className = review.current && row.dataset.application === review.current.id ? "selected" : "";
    });
  }

  function closeDetail() {
    review.current = null;
    hideReject();
    $("review-detail").hidden = true;
    refreshSelection();
  }

  function decide(verb, body, done) {
    if (!review.current || review.busy) return;
    const id = review.current.id;
    review.busy = true;
    notice("");
    api("POST", REVIEW_API + "/" + encodeURIComponent(id) + "/" + verb, body).then(function (a) {
      $("review-done").textContent = done + "：" + id + "（" + (a.status_name || a.status) + "）" +
        (verb === "start" ? "" : "，已通知市民。");
      if (verb === "start") return showApplication(id).then(refreshReview);
      closeDetail();
      $("review-title").focus();  // the decided application's buttons are gone: keyboard users start from the list
      return refreshReview();
    }).catch(function (e) {
      notice(e.message);
      refreshReview();
    }).then(function () { review.busy = false; });
  }

  function reasonProblem(reason) {
    if (reason.length < REASON_MIN) return "请填写驳回原因（至少 " + REASON_MIN + " 个字），市民会看到这段原因。";
    if (reason.length > REASON_MAX) return "驳回原因最多 " + REASON_MAX + " 个字。";
    return "";
  }

  function showReject() {
    $("reject-form").hidden = false;
    $("reject-reason").focus();
  }

  function hideReject() {
    $("reject-form").hidden = true;
    $("reject-reason").value = "";
    $("reject-reason").removeAttribute("aria-invalid");
    $("reject-error").textContent = "";
  }

  function selectTab(name) {
    const review_ = name === "review";
    $("tab-desk").setAttribute("aria-selected", String(!review_));
    $("tab-review").setAttribute("aria-selected", String(review_));
    $("tab-desk").tabIndex = review_ ? -1 : 0;
    $("tab-review").tabIndex = review_ ? 0 : -1;
    $("desk").hidden = review_;
    $("review").hidden = !review_;
    if (review_) refreshReview();
  }

  function setupReview() {
    $("tabs").hidden = false;
    $("desk").setAttribute("role", "tabpanel");
    $("desk").setAttribute("aria-labelledby", "tab-desk");
    selectTab(state.role === "reviewer" ? "review" : "desk");
    every(30000, function () { if (!$("review").hidden && !review.busy) refreshReview(); });
  }

  $("tab-desk").addEventListener("click", function () { selectTab("desk"); });
  $("tab-review").addEventListener("click", function () { selectTab("review"); });
  $("tabs").addEventListener("keydown", function (event) {   // arrow keys move between the two tabs
    if (["ArrowLeft", "ArrowRight", "Home", "End"].indexOf(event.key) < 0) return;
    event.preventDefault();
    const next = $("tab-desk").getAttribute("aria-selected") === "true" ? "review" : "desk";
    const target = event.key === "Home" ? "desk" : event.key === "End" ? "review" : next;
    selectTab(target);
    $(target === "review" ? "tab-review" : "tab-desk").focus();
  });
  $("review-filter").addEventListener("change", function () { closeDetail(); refreshReview(); });
  $("review-refresh").addEventListener("click", refreshReview);
  $("review-close").addEventListener("click", closeDetail);
  $("review-start").addEventListener("click", function () { decide("start", null, "已开始审核"); });
  $("review-approve").addEventListener("click", function () { decide("approve", null, "已通过"); });
  $("review-reject").addEventListener("click", showReject);
  $("reject-cancel").addEventListener("click", function () { hideReject(); $("review-reject").focus(); });
  $("reject-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const reason = $("reject-reason").value.replace(/\s+/g, " ").trim();
    const problem = reasonProblem(reason);
    $("reject-error").textContent = problem;
    if (problem) {
      $("reject-reason").setAttribute("aria-invalid", "true");
      $("reject-reason").focus();
      return;
    }
    $("reject-reason").removeAttribute("aria-invalid");
    decide("reject", { reason: reason }, "已驳回");
  });

  $("login").addEventListener("submit", function (event) {
    event.preventDefault();
    api("POST", "/api/staff/login", { username: $("username").value, password: $("password").value, totp: $("totp").value })
      .then(function (r) {
        state.token = r.token;
        state.role = r.role;
        sessionStorage.setItem("anju.staff.token", r.token);
        sessionStorage.setItem("anju.staff.role", r.role);
        sessionStorage.setItem("anju.staff.name", r.display_name);
        $("login").reset();  // the password and one-time code leave the page
        notice("");
        showDesk();
      }).catch(function (e) { notice(e.message); });
  });
  $("chat-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const text = $("chat-input").value.trim();
    if (!text || !state.ticket) return;
    $("chat-input").value = "";
    api("POST", "/api/staff/tickets/" + state.ticket.ticket_id + "/messages", { text: text }).catch(function (e) { notice(e.message); });
  });
  $("end").addEventListener("click", end);
  $("callbacks-refresh").addEventListener("click", refreshCallbacks);
  $("enlarge").addEventListener("click", function () {
    setLarge(!$("videos").classList.contains("videos--large"));
    $("enlarge").scrollIntoView({ block: "nearest" });
  });
  $("captions-toggle").addEventListener("click", toggleCaptions);
  $("captions").setAttribute("aria-live", "polite");
  captionRecordSection();
  $("captions").setAttribute("aria-label", "字幕");
  $("summary").addEventListener("input", showPreview);
  showPreview();
  $("logout").addEventListener("click", logout);
  if (state.token) showDesk();
})();
