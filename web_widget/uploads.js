// Material uploads in the chat. A bot message with custom.upload =
// {application_id, token, items: [{key, name}], expires_in_s} gets, for each item, a labelled file input
// (JPG, PNG or PDF; the camera on phones) and a 上传 button. The file goes to
// POST /api/uploads/<application_id>/<key> with the X-Upload-Token header (the session is the cookie);
// the answer (核验通过 / 待人工审核 / refused with the reason) is shown as a bot line, and an item that
// was accepted or handed to a person is disabled. widget.js hands every custom payload to the
// functions in window.AnjuCustom; ui = { addMessage(kind, text, buttons), send(text, shown), elderMode() }.
(function () {
  "use strict";
  const ACCEPT = "image/jpeg,image/png,application/pdf";
  const MAX_BYTES = 10 * 1024 * 1024;
  const DONE = ["accepted", "needs_review"];
  let counter = 0;

  // Styles live in /static/uploads.css (the CSP allows stylesheets from 'self' only).
  function injectCss() {
    if (document.getElementById("anju-uploads-css")) return;
    const link = document.createElement("link");
    link.id = "anju-uploads-css";
    link.rel = "stylesheet";
    link.href = "/static/uploads.css";
    document.head.appendChild(link);
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }

  // The gateway and the core answer {detail: {code, message}}; the body-size guard answers {detail: "…"}.
  function reason(body, status) {
    const detail = body && body.detail;
    if (detail && typeof detail === "object" && detail.message) return detail.message;
    if (typeof detail === "string") return detail;
    if (status === 413) return "文件太大了，请压缩后再上传（上限10MB）。";
    return "上传失败，请稍后再试。";
  }

  function finish(row, text) {
    row.input.disabled = true;
    row.button.disabled = true;
    row.button.textContent = "已上传";
    row.state.textContent = text;
    row.box.classList.add("uploads__item--done");
  }

  function upload(offer, item, row, ui) {
    const file = row.input.files && row.input.files[0];
    if (!file) { row.state.textContent = "请先选择文件或拍照。"; row.input.focus(); return; }
    if (file.size > MAX_BYTES) { row.state.textContent = "文件超过10MB，请压缩或重新拍照后再上传。"; return; }
    if (Date.now() > offer.expiresAt) {
      row.state.textContent = "上传入口已过期（30分钟），请在对话中说“查进度”重新获取。";
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name || "material");
    row.input.disabled = true;
    row.button.disabled = true;
    row.box.setAttribute("aria-busy", "true");
    row.state.textContent = "正在上传并识别，请稍候…";
    const path = "/api/uploads/" + encodeURIComponent(offer.application_id) + "/" + encodeURIComponent(item.key);
    fetch(path, { method: "POST", credentials: "same-origin", headers: { "X-Upload-Token": offer.token }, body: form })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
      })
      .then(function (res) {
        row.box.removeAttribute("aria-busy");
        if (res.ok && DONE.indexOf(res.body.status) >= 0) {
          finish(row, res.body.status_name || "已上传");
          ui.addMessage("bot", res.body.message || "“" + item.name + "”已上传。");
          return;
        }
        const text = reason(res.body, res.status);
        const code = res.body && res.body.detail && res.body.detail.code;
        if (code === "material_not_needed") { finish(row, "已上传"); return; }
        row.input.disabled = false;
        row.button.disabled = false;
        row.state.textContent = "未上传：" + text;
        ui.addMessage("bot", "“" + item.name + "”未能上传：" + text);
      })
      .catch(function () {
        row.box.removeAttribute("aria-busy");
        row.input.disabled = false;
        row.button.disabled = false;
        row.state.textContent = "网络连接失败，请检查网络后重试。";
      });
  }

  function render(payload, ui) {
    const items = Array.isArray(payload.items) ? payload.items : [];
    if (!payload.application_id || !payload.token || !items.length) return;
    injectCss();
    const offer = { application_id: String(payload.application_id), token: String(payload.token),
                    expiresAt: Date.now() + (Number(payload.expires_in_s) || 1800) * 1000 };
    const message = ui.addMessage("bot", "请上传以下材料（JPG、PNG 图片或 PDF，每份不超过10MB；手机可直接拍照）：");
    const group = el("div", "uploads");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "上传申请材料");
    items.forEach(function (item) {
      if (!item || !item.key) return;
      const id = "anju-upload-" + (++counter);
      const box = el("div", "uploads__item");
      const label = el("label", "uploads__label", item.name || "材料");
      label.htmlFor = id;
      const input = el("input", "uploads__file");
      input.type = "file";
      input.id = id;
      input.accept = ACCEPT;
      input.setAttribute("capture", "environment");
      const button = el("button", "uploads__send", "上传");
      button.type = "button";
      button.setAttribute("aria-label", "上传" + (item.name || "材料"));
      const state = el("p", "uploads__state");
      state.id = id + "-state";
      state.setAttribute("role", "status");
      input.setAttribute("aria-describedby", state.id);
      const row = { box: box, input: input, button: button, state: state };
      button.addEventListener("click", function () { upload(offer, item, row, ui); });
      input.addEventListener("change", function () {
        const file = input.files && input.files[0];
        state.textContent = file ? "已选择：" + file.name + "，请点“上传”。" : "";
      });
      box.appendChild(label);
      box.appendChild(input);
      box.appendChild(button);
      box.appendChild(state);
      group.appendChild(box);
    });
    message.appendChild(group);
    message.scrollIntoView({ block: "end" });
  }

  function onCustom(payload, ui) {
    if (!payload || typeof payload !== "object" || !payload.upload || typeof payload.upload !== "object") return false;
    render(payload.upload, ui);
    return true;
  }

  (window.AnjuCustom = window.AnjuCustom || []).push(onCustom);
  window.AnjuUploads = { onCustom: onCustom };
})();
