const path = require("path");
const simulate = require("miniprogram-simulate");
const fakeWx = require("./fake_wx");

const PAGE = simulate.load(path.join(__dirname, "../pages/chat/chat"), "chat-page");   // loaded once, rendered per test
const OFFER = {
  text: "需要的话，可以和工作人员视频办理。现在转视频服务吗？",
  buttons: [{ title: "好，视频办理", payload: "/accept_handoff" }, { title: "不用了", payload: "/decline_handoff" }],
  custom: { type: "handoff_offer", reason: "elder_mode" },
};
const QUEUED = {
  text: "已为您排队转接工作人员视频服务。",
  custom: { type: "handoff_queued", ticket_id: "t1", key: "k1", position: 2, page: "/pages/video/video?ticket=t1&key=k1" },
};

// A gateway that logs in any code, answers "转人工" with the video offer, accepting it with a queued ticket,
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
      return { statusCode: 200, data: { messages: [{ text: "收到：" + text }] } };
    }
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
