// Where the gateway is. In WeChat DevTools with "不校验合法域名" a local gateway works
// (http://127.0.0.1:8000); a published mini-program needs the centre's HTTPS domain, listed as a
// request and web-view (业务域名) domain in the mini-program's admin console.
module.exports = {
  API_BASE: "http://127.0.0.1:8000",
};
