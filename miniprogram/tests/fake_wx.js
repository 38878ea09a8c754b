// A stand-in for the parts of `wx` the mini-program uses: wx.login, wx.request and wx.uploadFile (answered
// by a fake gateway, recording every call), the pickers (wx.chooseMedia, wx.chooseMessageFile: they hand
// back what the test put in `picks`, or fail as cancelled), storage and navigation.
function install(gateway) {
  const storage = {};
  const calls = [];
  const uploads = [];
  const pickers = [];
  const picks = { media: null, file: null };
  const navigations = [];
  let codes = 0;
  global.wx = Object.assign({}, global.wx, {
    login(opts) { codes += 1; opts.success({ code: "code-" + codes }); },
    request(opts) {
      calls.push({ url: opts.url, method: opts.method, data: opts.data, header: opts.header });
      Promise.resolve(gateway(opts)).then(function (res) {
        if (res === "offline") opts.fail({ errMsg: "request:fail" });
        else opts.success(res);
      });
    },
    // like WeChat: the answer's body is a string, and the task reports progress
    uploadFile(opts) {
      const call = { url: opts.url, filePath: opts.filePath, name: opts.name, header: opts.header, upload: true };
      uploads.push(call);
      calls.push(call);
      const listeners = [];
      Promise.resolve(gateway(opts)).then(function (res) {
        if (res === "offline") { opts.fail({ errMsg: "uploadFile:fail" }); return; }
        listeners.forEach(function (cb) { cb({ progress: 100, totalBytesSent: 1, totalBytesExpectedToSend: 1 }); });
        const data = typeof res.data === "string" ? res.data : JSON.stringify(res.data);
        opts.success({ statusCode: res.statusCode, data: data });
      });
      return { onProgressUpdate(cb) { listeners.push(cb); }, abort() {} };
    },
    chooseMedia(opts) {
      pickers.push(Object.assign({ api: "chooseMedia" }, opts));
      if (picks.media) opts.success({ type: "image", tempFiles: [picks.media] });
      else opts.fail({ errMsg: "chooseMedia:fail cancel" });
    },
    chooseMessageFile(opts) {
      pickers.push(Object.assign({ api: "chooseMessageFile" }, opts));
      if (picks.file) opts.success({ tempFiles: [picks.file] });
      else opts.fail({ errMsg: "chooseMessageFile:fail cancel" });
    },
    setStorageSync(key, value) { storage[key] = value; },
    getStorageSync(key) { return key in storage ? storage[key] : ""; },
    navigateTo(opts) { navigations.push(opts.url); },
  });
  return { calls, uploads, pickers, picks, navigations, storage };
}

function path(url) { return url.replace(/^https?:\/\/[^/]+/, ""); }

module.exports = { install, path };
