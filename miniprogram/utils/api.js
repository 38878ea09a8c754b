// Every call the mini-program makes to the gateway. ENDPOINTS is the one list of paths
// (tests/unit/gateway/test_miniprogram_contract.py checks each against the gateway's OpenAPI).
// The session token from /api/wx/login stays in memory only: a new start logs in again, and an
// expired token (401) is replaced once by a new login before the request is given up.
const config = require("../config");

const ENDPOINTS = {
  login: ["POST", "/api/wx/login"],
  chat: ["POST", "/api/wx/chat"],
  book: ["POST", "/api/handoff/appointments"],
  videoPage: ["GET", "/wx/video"],
};
const NETWORK_ERROR = "网络连接失败，请检查网络后重试。";
const SERVER_ERROR = "服务暂时不可用，请稍后再试；急需办理可拨打 12329 服务热线。";

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let token = "";

function request(name, data) {
  const [method, path] = ENDPOINTS[name];
  const header = { "Content-Type": "application/json" };
  if (token) header.Authorization = "Bearer " + token;
  return new Promise(function (resolve, reject) {
    wx.request({
      url: config.API_BASE + path,
      method: method,
      data: data,
      header: header,
      timeout: 60000,
      success: function (res) {
        if (res.statusCode >= 200 && res.statusCode < 300) resolve(res.data);
        else reject(new ApiError(res.statusCode, (res.data && res.data.detail) || SERVER_ERROR));
      },
      fail: function () { reject(new ApiError(0, NETWORK_ERROR)); },
    });
  });
}

function wxLoginCode() {
  return new Promise(function (resolve, reject) {
    wx.login({
      success: function (res) {
        if (res.code) resolve(res.code);
        else reject(new ApiError(0, "微信登录失败，请稍后重新打开小程序。"));
      },
      fail: function () { reject(new ApiError(0, "微信登录失败，请稍后重新打开小程序。")); },
    });
  });
}

// wx.login() code -> the gateway's own session token (the openid never reaches the mini-program).
function login() {
  token = "";
  return wxLoginCode()
    .then(function (code) { return request("login", { code: code }); })
    .then(function (body) { token = body.token; return token; });
}

function withSession(call) {
  const first = token ? call() : login().then(call);
  return first.catch(function (err) {
    if (err.status !== 401) throw err;
    return login().then(call);
  });
}

// One chat turn: {messages: [...]}; the token the gateway rotates after identity verification is kept.
function chat(text, metadata) {
  return withSession(function () { return request("chat", { text: text, metadata: metadata || {} }); })
    .then(function (body) {
      if (body.token) token = body.token;
      return body;
    });
}

function book(slot) {
  return withSession(function () { return request("book", { slot: slot }); });
}

// The web-view address of the video page: the ticket goes in the fragment, which servers never see.
function videoPageSrc(ticket, key, elder) {
  if (!ticket || !key) return "";
  let fragment = "ticket=" + encodeURIComponent(ticket) + "&key=" + encodeURIComponent(key);
  if (elder) fragment += "&elder=1";
  return config.API_BASE + ENDPOINTS.videoPage[1] + "#" + fragment;
}

function hasSession() { return Boolean(token); }

module.exports = { ENDPOINTS, ApiError, login, chat, book, videoPageSrc, hasSession };
