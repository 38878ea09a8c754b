const fs = require("fs");
const path = require("path");
const simulate = require("miniprogram-simulate");
const fakeWx = require("./fake_wx");
const config = require("../config");

const PAGE = simulate.load(path.join(__dirname, "../pages/chat/chat"), "chat-page");   // loaded once, rendered per test
const OFFER = {
  text: "需要的话，可以和工作人员视频办理。现在转视频服务吗？",
  buttons: [{ title: "好，视频办理", payload: "/accept_handoff" }, { title: "不用了", payload: "/decline_handoff" }],
  custom: { type: "handoff_offer", reason: "elder_mode" },
};
const UPLOAD = {
  custom: { upload: {
    application_id: "TQ20261206000001", token: "1765031400.c2lnbmF0dXJl",
    items: [{ key: "m7", name: "解除或终止劳动关系证明" }, { key: "m8", name: "本人身份证" }], expires_in_s: 1800,
  } },
};
const ACCEPTED = {
  item: "m7", status: "accepted", status_name: "核验通过", fields: {}, remaining: ["本人身份证"],
  message: "“解除或终止劳动关系证明”已上传，核验通过。还需上传：本人身份证。",
};
const MISMATCH = { detail: { code: "id_number_mismatch",
  message: "材料上的身份证号不是您本人的，不能作为您的申请材料，文件未保存。请上传写有您本人身份证号的材料。" } };
const QUEUED = {
  text: "已为您排队转接工作人员视频服务。",
  custom: { type: "handoff_queued", ticket_id: "t1", key: "k1", position: 2, page: "/pages/video/video?ticket=t1&key=k1" },
};

// A gateway that logs in any code, answers "转人工" with the video offer, accepting it with a queued ticket,
// "上传材料" with an upload payload (uploads are answered by `options.upload`, accepted by default),
// and refuses the first token once (as after a gateway restart) when `expireOnce` is set.
function gateway(options = {}) {
  let tokens = 0;
  let expired = !options.expireOnce;
  return function (req) {
    const p = fakeWx.path(req.url);
    if (p === "/api/wx/login") { tokens += 1; return { statusCode: 200, data: { token: "tok-" + tokens } }; }
    if (p === "/api/wx/chat") {
      if (!expired) { expired = true; return { statusCode: 401, data: { detail: "登录已过期或无效，请重新打开小程序登录。" } }; }
      const text = req.data.text;
      if (text === "转人工") return { statusCode: 200, data: { messages: [OFFER] } };
      if (text === "/accept_handoff") return { statusCode: 200, data: { messages: [QUEUED] } };
      if (text === "上传材料") return { statusCode: 200, data: { messages: [{ text: "申请已提交。还需要上传材料：" }, UPLOAD] } };
      return { statusCode: 200, data: { messages: [{ text: "收到：" + text }] } };
    }
    if (p.startsWith("/api/uploads/")) return (options.upload || (() => ({ statusCode: 200, data: ACCEPTED })))(req);
    return { statusCode: 404, data: { detail: "Not Found" } };
  };
}

async function openPage(gw) {
  const wx = fakeWx.install(gw);
  const page = simulate.render(PAGE);
  page.attach(document.createElement("parent-wrapper"));
  await page.instance.onLoad();
  return { page, wx };
}

function texts(page) { return page.data.items.map((it) => it.text); }

test("logs in with the wx.login code, then chats with the gateway's token", async () => {
  const { page, wx } = await openPage(gateway());
  expect(wx.calls[0].data).toEqual({ code: "code-1" });
  expect(page.data.status).toBe("已连接，请输入您的问题。");
  page.instance.onInput({ detail: { value: "租房怎么提取公积金" } });
  await page.instance.onSend();
  const call = wx.calls[1];
  expect(fakeWx.path(call.url)).toBe("/api/wx/chat");
  expect(call.header.Authorization).toBe("Bearer tok-1");
  expect(texts(page)).toEqual(["租房怎么提取公积金", "收到：租房怎么提取公积金"]);
  expect(page.data.input).toBe("");
});

test("the four quick replies are on the page and each asks its question", async () => {
  const { page, wx } = await openPage(gateway());
  const buttons = page.querySelectorAll(".quick__item");
  expect(buttons.map((b) => b.dom.textContent.trim())).toEqual(["提取", "贷款", "查余额", "转人工"]);
  buttons[2].dispatchEvent("tap");
  await simulate.sleep(10);
  expect(wx.calls[1].data.text).toBe("查余额");
  expect(texts(page)).toEqual(["查余额", "收到：查余额"]);
});

test("elder mode is remembered on the phone and sent with every turn", async () => {
  const { page, wx } = await openPage(gateway());
  page.instance.onElderChange({ detail: { value: true } });
  expect(wx.storage["anju.elder"]).toBe(true);
  await page.instance.send("你好");
  expect(wx.calls[1].data.metadata).toEqual({ elder_mode: true });
  expect(page.querySelector(".chat").dom.className).toContain("elder");
  const again = simulate.render(PAGE);   // opened again later
  again.instance.onLoad();
  expect(again.data.elder).toBe(true);
});

test("the video offer's buttons answer once, and a queued ticket opens the video page", async () => {
  const { page, wx } = await openPage(gateway());
  await page.instance.send("转人工");
  const offer = page.data.items[1];
  expect(offer.offer).toBe(true);
  expect(offer.buttons.map((b) => b.payload)).toEqual(["/accept_handoff", "/decline_handoff"]);
  const yes = page.querySelector(".choice");
  expect(yes.dom.textContent.trim()).toBe("好，视频办理");
  yes.dispatchEvent("tap");
  await simulate.sleep(10);
  expect(wx.calls[2].data.text).toBe("/accept_handoff");
  expect(page.data.items[1].buttons).toEqual([]);            // answered: the offer's buttons are gone
  expect(texts(page)[2]).toBe("好，视频办理");               // the citizen sees the title, not the payload
  const open = page.querySelector(".video-open");
  open.dispatchEvent("tap");
  await simulate.sleep(10);
  expect(wx.navigations).toEqual(["/pages/video/video?ticket=t1&key=k1"]);
});

test("an expired token is replaced by a new login and the message still goes through", async () => {
  const { page, wx } = await openPage(gateway({ expireOnce: true }));
  await page.instance.send("你好");
  expect(wx.calls.map((c) => fakeWx.path(c.url))).toEqual(["/api/wx/login", "/api/wx/chat", "/api/wx/login", "/api/wx/chat"]);
  expect(wx.calls[3].header.Authorization).toBe("Bearer tok-2");
  expect(texts(page)).toEqual(["你好", "收到：你好"]);
});

test("errors are shown in Chinese and an empty message is not sent", async () => {
  const { page, wx } = await openPage(() => "offline");
  expect(page.data.status).toBe("网络连接失败，请检查网络后重试。");
  await page.instance.send("   ");
  expect(page.data.status).toBe("请输入内容后再发送。");
  await page.instance.send("你好");
  expect(page.data.items[1]).toMatchObject({ kind: "error", text: "网络连接失败，请检查网络后重试。" });
  expect(wx.calls.filter((c) => fakeWx.path(c.url) === "/api/wx/chat")).toEqual([]);
});

// --- material uploads (custom.upload) ----------------------------------------------------------
async function uploadOffer(gw) {
  const opened = await openPage(gw);
  await opened.page.instance.send("上传材料");
  return opened;
}

function label(node) { return node.dom.textContent.trim(); }

async function tap(page, selector, index = 0) {
  page.querySelectorAll(selector)[index].dispatchEvent("tap");
  await simulate.sleep(10);
}

const PHOTO = { tempFilePath: "wxfile://tmp/photo.jpg", size: 850 * 1024, fileType: "image" };
const PDF = { path: "wxfile://tmp/contract.pdf", size: 300 * 1024, name: "解除劳动合同证明.pdf", type: "file" };

test("an upload payload draws, per item, a photo button and a PDF button with spoken labels", async () => {
  const { page } = await uploadOffer(gateway());
  const offer = page.data.items[2];
  expect(offer.text).toBe("请上传以下材料（拍照、相册图片或PDF文件，每份不超过10MB）：");
  expect(offer.uploads.map((u) => [u.key, u.name, u.application_id, u.state]))
    .toEqual([["m7", "解除或终止劳动关系证明", "TQ20261206000001", "waiting"], ["m8", "本人身份证", "TQ20261206000001", "waiting"]]);
  expect(page.querySelectorAll(".upload__name").map(label)).toEqual(["解除或终止劳动关系证明", "本人身份证"]);
  const photos = page.querySelectorAll(".upload__photo");
  const pdfs = page.querySelectorAll(".upload__pdf");
  expect(photos.map(label)).toEqual(["拍照或相册", "拍照或相册"]);
  expect(pdfs.map(label)).toEqual(["选择PDF文件", "选择PDF文件"]);
  // screen readers name the item on each button (the simulator drops aria-* from its DOM: checked in the template)
  expect(offer.uploads[1].photo_label).toBe("拍照或从相册选择图片，上传本人身份证");
  expect(offer.uploads[0].pdf_label).toBe("选择PDF文件，上传解除或终止劳动关系证明");
  const wxml = fs.readFileSync(path.join(__dirname, "../pages/chat/chat.wxml"), "utf-8");
  expect(wxml).toMatch(/<button class="upload__photo"[^>]*aria-label="\{\{u\.photo_label\}\}"/);
  expect(wxml).toMatch(/<button class="upload__pdf"[^>]*aria-label="\{\{u\.pdf_label\}\}"/);
  page.instance.onElderChange({ detail: { value: true } });       // elder mode: same buttons, larger text
  expect(page.querySelector(".chat").dom.className).toContain("elder");
  expect(page.querySelectorAll(".upload__photo")).toHaveLength(2);
});

test("a photo goes to the item's upload path with both tokens; while it uploads the buttons wait", async () => {
  let answer;
  const { page, wx } = await uploadOffer(gateway({ upload: () => new Promise((resolve) => { answer = resolve; }) }));
  wx.picks.media = PHOTO;
  await tap(page, ".upload__photo");
  expect(wx.pickers[0]).toMatchObject({ api: "chooseMedia", count: 1, mediaType: ["image"],
    sourceType: ["album", "camera"], sizeType: ["compressed"] });
  expect(wx.uploads).toHaveLength(1);
  const sent = wx.uploads[0];
  expect(sent.url).toBe(config.API_BASE + "/api/uploads/TQ20261206000001/m7");
  expect(sent).toMatchObject({ name: "file", filePath: "wxfile://tmp/photo.jpg" });
  expect(sent.header).toMatchObject({ Authorization: "Bearer tok-1", "X-Upload-Token": "1765031400.c2lnbmF0dXJl" });
  expect(page.data.items[2].uploads[0]).toMatchObject({ state: "uploading", note: "上传中…" });
  expect(page.querySelector(".upload__note").dom.textContent).toBe("上传中…");
  await tap(page, ".upload__photo");                                 // a second tap while it uploads sends nothing
  expect(wx.uploads).toHaveLength(1);
  answer({ statusCode: 200, data: ACCEPTED });
  await simulate.sleep(10);
  expect(texts(page).slice(-1)).toEqual(["“解除或终止劳动关系证明”已上传，核验通过。还需上传：本人身份证。"]);
  expect(page.data.items[2].uploads.map((u) => u.state)).toEqual(["done", "waiting"]);
  expect(page.querySelectorAll(".upload__photo")).toHaveLength(1);   // the done item's buttons are gone
  expect(page.querySelectorAll(".upload__note").map(label)).toEqual(["核验通过"]);
});

test("a PDF is picked from a chat file and an answer for a person to check also closes the item", async () => {
  const review = { item: "m8", status: "needs_review", status_name: "待人工审核", fields: {}, remaining: [],
    message: "“本人身份证”已上传，但有效期未能识别，将由工作人员人工审核，无需重复上传。材料已全部提交，请等待工作人员审核，审核结果会通知您。" };
  const { page, wx } = await uploadOffer(gateway({ upload: () => ({ statusCode: 200, data: review }) }));
  wx.picks.file = PDF;
  await tap(page, ".upload__pdf", 1);
  expect(wx.pickers[0]).toMatchObject({ api: "chooseMessageFile", count: 1, type: "file", extension: ["pdf"] });
  expect(wx.uploads[0].url).toBe(config.API_BASE + "/api/uploads/TQ20261206000001/m8");
  expect(wx.uploads[0].filePath).toBe("wxfile://tmp/contract.pdf");
  expect(texts(page).slice(-1)).toEqual([review.message]);
  expect(page.data.items[2].uploads.map((u) => u.state)).toEqual(["waiting", "done"]);
});

test("another person's ID number is refused: the reason is shown and the item can be tried again", async () => {
  let tries = 0;
  const { page, wx } = await uploadOffer(gateway({
    upload: () => (++tries === 1 ? { statusCode: 422, data: MISMATCH } : { statusCode: 200, data: ACCEPTED }),
  }));
  wx.picks.media = PHOTO;
  await tap(page, ".upload__photo");
  expect(texts(page).slice(-1)).toEqual(["“解除或终止劳动关系证明”未能上传：" + MISMATCH.detail.message]);
  expect(page.data.items[2].uploads[0]).toMatchObject({ state: "waiting", note: "未上传：" + MISMATCH.detail.message });
  expect(page.querySelectorAll(".upload__photo")).toHaveLength(2);   // still open for another photo
  await tap(page, ".upload__photo");
  expect(wx.uploads).toHaveLength(2);
  expect(page.data.items[2].uploads[0].state).toBe("done");
});

test("a file over 10 MB is refused on the phone and nothing is uploaded; a cancelled picker does nothing", async () => {
  const { page, wx } = await uploadOffer(gateway());
  await tap(page, ".upload__photo");                                  // picker cancelled
  expect(wx.pickers).toHaveLength(1);
  expect(page.data.items).toHaveLength(3);
  expect(page.data.items[2].uploads[0]).toMatchObject({ state: "waiting", note: "" });
  wx.picks.media = Object.assign({}, PHOTO, { size: 10 * 1024 * 1024 + 1 });
  await tap(page, ".upload__photo");
  expect(wx.uploads).toEqual([]);
  expect(page.data.items[3]).toMatchObject({ kind: "error",
    text: "“解除或终止劳动关系证明”未上传：文件超过10MB，请压缩或重新拍照后再上传。" });
  expect(page.data.items[2].uploads[0].state).toBe("waiting");
  expect(page.querySelectorAll(".upload__photo")).toHaveLength(2);
});

test("an expired upload token is refused without logging in again; an expired session logs in once", async () => {
  const expired = { detail: { code: "upload_token_invalid", message: "上传凭证已过期（有效期30分钟），请回到对话中重新获取上传入口。" } };
  const { page, wx } = await uploadOffer(gateway({ upload: () => ({ statusCode: 401, data: expired }) }));
  wx.picks.media = PHOTO;
  await tap(page, ".upload__photo");
  expect(wx.calls.map((c) => fakeWx.path(c.url))).toEqual(
    ["/api/wx/login", "/api/wx/chat", "/api/uploads/TQ20261206000001/m7"]);
  expect(texts(page).slice(-1)).toEqual(["“解除或终止劳动关系证明”未能上传：" + expired.detail.message]);
  expect(page.data.items[2].uploads[0].state).toBe("waiting");

  let first = true;
  const gone = { detail: { code: "session_required", message: "会话不存在或已过期，请刷新页面，回到对话中重新获取上传入口。" } };
  const again = await uploadOffer(gateway({
    upload: () => (first ? ((first = false), { statusCode: 401, data: gone }) : { statusCode: 200, data: ACCEPTED }),
  }));
  again.wx.picks.media = PHOTO;
  await tap(again.page, ".upload__photo");
  expect(again.wx.calls.map((c) => fakeWx.path(c.url))).toEqual(["/api/wx/login", "/api/wx/chat",
    "/api/uploads/TQ20261206000001/m7", "/api/wx/login", "/api/uploads/TQ20261206000001/m7"]);
  expect(again.wx.uploads[1].header.Authorization).toBe("Bearer tok-2");
  expect(again.page.data.items[2].uploads[0].state).toBe("done");
});

test("an upload link past its 30 minutes is not used; the citizen is told to get a new one", async () => {
  const { page, wx } = await uploadOffer(gateway());
  const later = Date.now() + 1801 * 1000;
  const clock = jest.spyOn(Date, "now").mockReturnValue(later);
  try {
    wx.picks.file = PDF;
    await tap(page, ".upload__pdf");
  } finally {
    clock.mockRestore();
  }
  expect(wx.uploads).toEqual([]);
  expect(texts(page).slice(-1)).toEqual(["“解除或终止劳动关系证明”未上传：上传入口已过期（有效期30分钟），请回到对话中重新获取上传入口。"]);
});
