// Every call the mini-program makes to the gateway. ENDPOINTS is the one list of paths
// (tests/unit/gateway/test_miniprogram_contract.py checks each against the gateway's OpenAPI).
// The session token from /api/wx/login stays in memory only: a new start logs in again, and an
// expired token (401) is replaced once by a new login before the request is given up.
// Material uploads (wx.uploadFile) carry the session token and the upload token the bot handed out;
// only a 401 about the session (code session_required) logs in again, never one about the upload token.
const config = require("../config");

const ENDPOINTS = {
  login: ["POST", "/api/wx/login"],
  chat: ["POST", "/api/wx/chat"],
  book: ["POST", "/api/handoff/appointments"],
  videoPage: ["GET", "/wx/video"],
  upload: ["POST", "/api/uploads/{application_id}/{item_key}"],
};
const NETWORK_ERROR = "网络连接失败，请检查网络后重试。";
const SERVER_ERROR = "服务暂时不可用，请稍后再试；急需办理可拨打 12329 服务热线。";
const UPLOAD_FAILED = "上传失败，请稍后再试。";
const UPLOAD_TOO_BIG = "文件太大了，请压缩后再上传（上限10MB）。";
const NOT_LOGGED_IN = "登录已过期或无效，请重新打开小程序登录。";
const SESSION_REFUSED = "session_required";   // the upload route's 401 when the session is gone

// `code` is the gateway's machine-readable reason where it gives one ({detail: {code, message}}).
class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code || "";
  }
}

// The gateway answers {detail: "…"} or {detail: {code, message}}: the Chinese message and the code.
function refusalOf(body, status, fallback) {
  const detail = body && body.detail;
  if (detail && typeof detail === "object") {
    return new ApiError(status, typeof detail.message === "string" && detail.message ? detail.message : fallback,
                        typeof detail.code === "string" ? detail.code : "");
  }
  return new ApiError(status, typeof detail === "string" && detail ? detail : fallback);
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
        else reject(refusalOf(res.data, res.statusCode, SERVER_ERROR));
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

function uploadOnce(url, uploadToken, filePath, onProgress) {
  const header = { "X-Upload-Token": uploadToken };
  if (token) header.Authorization = "Bearer " + token;
  return new Promise(function (resolve, reject) {
    const task = wx.uploadFile({
      url: url,
      filePath: filePath,
      name: "file",
      header: header,
      timeout: 120000,   // the core reads the file with OCR before it answers
      success: function (res) {
        let body = res.data;
        if (typeof body === "string") {
          try { body = JSON.parse(body); } catch (e) { body = null; }
        }
        const status = res.statusCode;
        if (status >= 200 && status < 300 && body && typeof body === "object") resolve(body);
        else reject(refusalOf(body, status, status === 413 ? UPLOAD_TOO_BIG : status >= 500 ? SERVER_ERROR : UPLOAD_FAILED));
      },
      fail: function () { reject(new ApiError(0, NETWORK_ERROR)); },
    });
    if (onProgress && task && typeof task.onProgressUpdate === "function") {
      task.onProgressUpdate(function (p) { onProgress(p.progress); });
    }
  });
}

// One material file (a temp path from wx.chooseMedia / wx.chooseMessageFile) -> the core's verdict
// {item, status: accepted|needs_review, status_name, message, fields, remaining}. A refusal rejects with an
// ApiError carrying the Chinese message and the code (e.g. id_number_mismatch, upload_token_invalid).
function upload(applicationId, itemKey, uploadToken, filePath, onProgress) {
  const url = config.API_BASE + ENDPOINTS.upload[1]
    .replace("{application_id}", encodeURIComponent(applicationId))
    .replace("{item_key}", encodeURIComponent(itemKey));
  const call = function () { return uploadOnce(url, uploadToken, filePath, onProgress); };
  const first = token ? call() : login().then(call);
  return first.catch(function (err) {
    if (err.status !== 401 || err.code !== SESSION_REFUSED) throw err;
    return login().then(call);
  }).catch(function (err) {
    // the gateway's wording for this refusal speaks of a web page; here it means opening the mini-program again
    if (err.code === SESSION_REFUSED) throw new ApiError(401, NOT_LOGGED_IN, err.code);
    throw err;
  });
}

// The web-view address of the video page: the ticket goes in the fragment, which servers never see.
function videoPageSrc(ticket, key, elder) {
  if (!ticket || !key) return "";
  let fragment = "ticket=" + encodeURIComponent(ticket) + "&key=" + encodeURIComponent(key);
  if (elder) fragment += "&elder=1";
  return config.API_BASE + ENDPOINTS.videoPage[1] + "#" + fragment;
}

function hasSession() { return Boolean(token); }

module.exports = { ENDPOINTS, ApiError, login, chat, book, upload, videoPageSrc, hasSession };
