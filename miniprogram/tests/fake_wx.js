// A stand-in for the parts of `wx` the mini-program uses: wx.login, wx.request (answered by a fake
// gateway, recording every call), storage and navigation.
function install(gateway) {
  const storage = {};
  const calls = [];
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
    setStorageSync(key, value) { storage[key] = value; },
    getStorageSync(key) { return key in storage ? storage[key] : ""; },
    navigateTo(opts) { navigations.push(opts.url); },
  });
  return { calls, navigations, storage };
}

function path(url) { return url.replace(/^https?:\/\/[^/]+/, ""); }

module.exports = { install, path };
