// The chat page's logic as plain functions: the gateway's bot messages -> items the page draws,
// the quick replies, and elder mode (kept on this phone with wx.setStorageSync).
const QUICK_REPLIES = [
  { title: "提取", ask: "哪些情况可以提取公积金" },
  { title: "贷款", ask: "公积金贷款条件" },
  { title: "查余额", ask: "查余额" },
  { title: "转人工", ask: "转人工" },
];
const ELDER_KEY = "anju.elder";
const OFFER_PAYLOADS = ["/accept_handoff", "/decline_handoff"];
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

// One item per bot message. The video offer keeps its two choices as big buttons (offer: true); a queued
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
    return item("bot", m.text, { buttons: buttons, image: m.image || "" });
  }).filter(function (it) {
    return it.text || it.buttons.length || it.video || (it.slots && it.slots.length) || it.image;
  });
}

module.exports = { QUICK_REPLIES, ELDER_KEY, readElder, saveElder, metadata, item, toItems };
