// The chat page's logic as plain functions: the gateway's bot messages -> items the page draws,
// the quick replies, elder mode (kept on this phone with wx.setStorageSync), and the material-upload
// entries of an online withdrawal application (custom.upload) with their client-side checks.
const QUICK_REPLIES = [
  { title: "提取", ask: "哪些情况可以提取公积金" },
  { title: "贷款", ask: "公积金贷款条件" },
  { title: "查余额", ask: "查余额" },
  { title: "转人工", ask: "转人工" },
];
const ELDER_KEY = "anju.elder";
const OFFER_PAYLOADS = ["/accept_handoff", "/decline_handoff"];
const UPLOAD_TEXT = "请上传以下材料（拍照、相册图片或PDF文件，每份不超过10MB）：";
const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;
const TOO_BIG = "文件超过10MB，请压缩或重新拍照后再上传。";
const EXPIRED = "上传入口已过期（有效期30分钟），请回到对话中重新获取上传入口。";
const UPLOAD_DONE = ["accepted", "needs_review"];
let serial = 0;

function readElder() {
  try { return wx.getStorageSync(ELDER_KEY) === true; } catch (e) { return false; }
}

function saveElder(on) {
  wx.setStorageSync(ELDER_KEY, Boolean(on));
}

function metadata(elder) {
  return elder ? { elder_mode: true } : {};
}

function item(kind, text, extra) {
  serial += 1;
  return Object.assign({ id: "m" + serial, kind: kind, text: text || "", buttons: [] }, extra || {});
}

// custom.upload = {application_id, token, items: [{key, name}], expires_in_s} -> one entry per item, each
// with its own state: "waiting" (two buttons), "uploading" (buttons disabled), "done" (buttons gone), and
// the buttons' spoken labels (aria-label) naming the item.
function toUploads(upload) {
  if (!upload || typeof upload !== "object" || !upload.application_id || !upload.token) return [];
  const expiresAt = Date.now() + (Number(upload.expires_in_s) || 1800) * 1000;
  return (Array.isArray(upload.items) ? upload.items : []).filter(function (i) { return i && i.key; }).map(function (i) {
    const name = String(i.name || "材料");
    return { key: String(i.key), name: name, application_id: String(upload.application_id),
             token: String(upload.token), expires_at: expiresAt, state: "waiting", note: "",
             photo_label: "拍照或从相册选择图片，上传" + name, pdf_label: "选择PDF文件，上传" + name };
  });
}

// Why a chosen file is not sent at all (too big, or the upload link has run out), or "" when it may go.
function uploadRefusal(entry, size, now) {
  if (Number(size) > MAX_UPLOAD_BYTES) return TOO_BIG;
  if ((now || Date.now()) > entry.expires_at) return EXPIRED;
  return "";
}

// One item per bot message. A material-upload payload (custom.upload) carries no text of its own. The video offer keeps its two choices as big buttons (offer: true); a queued
// handoff gets a button that opens the video page (video.page); appointment slots become buttons that book.
function toItems(messages) {
  return (messages || []).map(function (m) {
    const custom = m.custom || {};
    const buttons = (m.buttons || []).map(function (b) { return { title: b.title, payload: b.payload }; });
    if (custom.type === "handoff_offer") {
      const offer = buttons.length ? buttons : OFFER_PAYLOADS.map(function (p, i) {
        return { title: i === 0 ? "好，视频办理" : "不用了", payload: p };
      });
      return item("bot", m.text, { buttons: offer, offer: true });
    }
    if (custom.type === "handoff_queued" && custom.page) {
      return item("bot", m.text, { video: { page: custom.page, position: custom.position } });
    }
    if (custom.type === "handoff_booking") {
      const slots = (custom.slots || []).map(function (s) { return { title: s.label, slot: s.slot }; });
      return item("bot", slots.length ? m.text : "近期预约已满，请拨打 12329 服务热线预约。", { slots: slots });
    }
    if (custom.upload) {
      const uploads = toUploads(custom.upload);
      return item("bot", uploads.length ? m.text || UPLOAD_TEXT : m.text, { uploads: uploads });
    }
    return item("bot", m.text, { buttons: buttons, image: m.image || "" });
  }).filter(function (it) {
    return it.text || it.buttons.length || it.video || (it.slots && it.slots.length) || it.image ||
      (it.uploads && it.uploads.length);
  });
}

module.exports = {
  QUICK_REPLIES, ELDER_KEY, MAX_UPLOAD_BYTES, UPLOAD_DONE, UPLOAD_TEXT,
  readElder, saveElder, metadata, item, toItems, toUploads, uploadRefusal,
};
