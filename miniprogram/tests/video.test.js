const path = require("path");
const simulate = require("miniprogram-simulate");
const fakeWx = require("./fake_wx");
const chatLogic = require("../utils/chat");
const config = require("../config");

const PAGE = simulate.load(path.join(__dirname, "../pages/video/video"), "video-page");

function open(query) {
  const page = simulate.render(PAGE);
  page.attach(document.createElement("parent-wrapper"));
  page.instance.onLoad(query);
  return page;
}

test("the web-view opens the gateway's video page with the ticket in the fragment", () => {
  fakeWx.install(() => ({ statusCode: 404 }));
  const page = open({ ticket: "t 1", key: "k/1" });
  expect(page.data.src).toBe(config.API_BASE + "/wx/video#ticket=t%201&key=k%2F1");
  expect(page.querySelector(".error")).toBeUndefined();
});

test("elder mode carries over to the video page", () => {
  fakeWx.install(() => ({ statusCode: 404 }));
  chatLogic.saveElder(true);
  expect(open({ ticket: "t1", key: "k1" }).data.src).toMatch(/#ticket=t1&key=k1&elder=1$/);
});

test("without a ticket the page says what to do instead of opening anything", () => {
  fakeWx.install(() => ({ statusCode: 404 }));
  const page = open({});
  expect(page.data.src).toBe("");
  expect(page.querySelector(".error").dom.textContent).toContain("转人工");
});

test("appointment slots and an offer without buttons are drawn as choices", () => {
  const items = chatLogic.toItems([
    { text: "请选择方便的时间：", custom: { type: "handoff_booking", slots: [{ slot: "2030-01-02T09:00:00+08:00", label: "1月2日 9:00" }] } },
    { text: "现在转视频服务吗？", custom: { type: "handoff_offer" } },
    { custom: { type: "handoff_booking", slots: [] } },
  ]);
  expect(items[0].slots).toEqual([{ title: "1月2日 9:00", slot: "2030-01-02T09:00:00+08:00" }]);
  expect(items[1].buttons.map((b) => b.payload)).toEqual(["/accept_handoff", "/decline_handoff"]);
  expect(items[2].text).toContain("12329");
});
