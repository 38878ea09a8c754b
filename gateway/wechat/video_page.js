// The page the mini-program's web-view (pages/video/video) opens for a video handoff:
// /wx/video#ticket=<id>&key=<key>[&elder=1]. The ticket is in the fragment, which no server sees.
// It is handed to handoff.js the way a reloaded widget resumes one (sessionStorage "anju.handoff"),
// so the queue, the recording notice and the call are the widget's own; this script only gives
// handoff.js the small `ui` it writes messages to.
(function () {
  "use strict";
  var STORE = "anju.handoff";
  var status = document.getElementById("status");
  var params = new URLSearchParams(location.hash.slice(1));
  if (params.get("ticket") && params.get("key")) {
    sessionStorage.setItem(STORE, JSON.stringify({ id: params.get("ticket"), key: params.get("key") }));
    history.replaceState(null, "", location.pathname);  // the key leaves the address bar
  }
  if (params.get("elder") === "1") document.body.classList.add("elder");
  if (!sessionStorage.getItem(STORE)) {
    status.textContent = "没有找到排队信息，请返回聊天页面，再说一次“转人工”。";
    return;
  }
  function addMessage(kind, text) {
    var item = document.createElement("li");
    item.className = "msg msg--" + kind;
    item.textContent = text || "";
    document.getElementById("messages").appendChild(item);
    item.scrollIntoView({ block: "end" });
  }
  window.AnjuWidget = { addMessage: addMessage, send: function () {}, elderMode: function () { return params.get("elder") === "1"; } };
  status.textContent = "";
})();
