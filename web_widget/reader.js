// Read-aloud for the citizen widget: a 朗读 button on every bot message and, in elder mode, an optional
// 自动朗读 (remembered on this device like elder mode). Audio comes from POST /api/tts (the server
// rewrites numbers, amounts and dates into words); when that fails the browser's speechSynthesis
// (zh-CN) reads spokenText(text), the same rewriting done here. Starting anything new, a new message or
// the citizen sending one stops what is playing. widget.js calls decorate(item, text) and onMessage(kind).
(function () {
  "use strict";
  const AUTO_KEY = "anju.autoread";
  const TTS_MAX = 500;  // characters per POST /api/tts
  const state = { audio: null, url: null, button: null, run: 0, server: true, auto: readAuto(), pending: [] };

  function readAuto() {
    try { return localStorage.getItem(AUTO_KEY) === "1"; } catch (e) { return false; }
  }

  // ---- numbers, amounts and dates as words (mirrors speech/spoken_text.py) ----
  const DIGIT = "零一二三四五六七八九";
  const CODE_DIGIT = { 0: "零", 1: "幺", 2: "二", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八", 9: "九", X: "叉", x: "叉" };

  function group4(n) {
    const units = ["千", "百", "十", ""];
    const digits = String(n).padStart(4, "0");
    let out = "", zero = false;
    for (let i = 0; i < 4; i++) {
      const d = Number(digits[i]);
      if (d === 0) { if (out) zero = true; continue; }
      if (zero) { out += "零"; zero = false; }
      out += DIGIT[d] + units[i];
    }
    return out;
  }

  function integerWords(digits) {
    digits = digits.replace(/^0+(?=\d)/, "");
    if (digits === "0") return "零";
    const big = ["", "万", "亿", "万亿"];
    const groups = [];
    for (let end = digits.length; end > 0; end -= 4) groups.unshift(Number(digits.slice(Math.max(0, end - 4), end)));
    let out = "", zeroPending = false;
    groups.forEach(function (g, i) {
      const unit = big[groups.length - 1 - i];
      if (g === 0) { if (out) zeroPending = true; return; }
      if (out && (zeroPending || g < 1000)) out += "零";
      zeroPending = false;
      out += group4(g) + unit;
    });
    return out.startsWith("一十") ? out.slice(1) : out;  // 十二, 十万: as people say it
  }

  function quantity(number) {
    const parts = number.split(".");
    let out = integerWords(parts[0]);
    if (parts[1]) out += "点" + parts[1].replace(/\d/g, function (d) { return DIGIT[d]; });
    return out;
  }

  function codeDigits(s) { return s.replace(/[\dXx]/g, function (d) { return CODE_DIGIT[d]; }); }
  function plainDigits(s) { return s.replace(/\d/g, function (d) { return DIGIT[d]; }); }

  function date(year, month, day, dayWord) {
    let out = year ? plainDigits(year) + "年" : "";
    if (month) out += quantity(String(Number(month))) + "月";
    if (day) out += quantity(String(Number(day))) + (dayWord || "日");
    return out;
  }

  function spokenText(text) {
    return String(text || "")
      .replace(/(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)/g, function (m, y, mo, d) { return date(y, mo, d); })
      .replace(/(?<!\d)(\d{4})年(?:(\d{1,2})月)?(?:(\d{1,2})([日号]))?/g, function (m, y, mo, d, w) { return date(y, mo, d, w); })
      .replace(/(?<!\d)(\d{1,2})月(\d{1,2})([日号])/g, function (m, mo, d, w) { return date(null, mo, d, w); })
      .replace(/(?<!\d)(\d{1,2}):(\d{2})(?!\d)/g, function (m, h, mm) {
        const minutes = mm === "00" ? "整" : (mm[0] === "0" ? "零" + quantity(mm[1]) : quantity(mm)) + "分";
        return quantity(String(Number(h))) + "点" + minutes;
      })
      .replace(/(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])/g, codeDigits)
      .replace(/[¥￥](\d+(?:\.\d+)?)/g, "$1元")
      .replace(/(?<![\d.])\d{1,3}(?:,\d{3})+(?:\.\d+)?/g, function (m) { return m.replace(/,/g, ""); })
      .replace(/(\d+(?:\.\d+)?)%/g, function (m, n) { return "百分之" + quantity(n); })
      .replace(/(?<![\d.])\d{5,}(?![\d.]|\s*[元块万亿])/g, codeDigits)  // phone, hotline, code; not amounts
      .replace(/(?<![\d.])2(?=[笔个次位项种份张套天年岁])/g, "两")
      .replace(/(?<![\d.])\d+(?:\.\d+)?(?![\d.])/g, quantity);
  }

  // ---- playback ----
  function say(text) {
    const status = document.getElementById("status");
    if (status) status.textContent = text;
  }

  // Pieces of at most TTS_MAX characters, cut after a sentence where possible.
  function chunks(text) {
    const out = [];
    let current = "";
    (text.match(/[^。！？；\n]*[。！？；\n]+|[^。！？；\n]+$/g) || []).forEach(function (sentence) {
      while (sentence.length > TTS_MAX) { out.push(sentence.slice(0, TTS_MAX)); sentence = sentence.slice(TTS_MAX); }
      if ((current + sentence).length > TTS_MAX) { out.push(current); current = ""; }
      current += sentence;
    });
    if (current.trim()) out.push(current);
    return out.filter(function (c) { return c.trim(); });
  }

  function markButton(button, playing) {
    if (!button) return;
    button.textContent = playing ? "停止" : "朗读";
    button.setAttribute("aria-label", playing ? "停止朗读" : "朗读这条消息");
    button.setAttribute("aria-pressed", String(playing));
  }

  function stop() {
    state.run += 1;  // whatever is still loading or queued belongs to an older run
    if (state.audio) { state.audio.pause(); state.audio.removeAttribute("src"); state.audio = null; }
    if (state.url) { URL.revokeObjectURL(state.url); state.url = null; }
    if (window.speechSynthesis) window.speechSynthesis.cancel();
    markButton(state.button, false);
    state.button = null;
  }

  function serverAudio(text) {
    return fetch("/api/tts", {
      method: "POST", headers: { "Content-Type": "application/json" }, credentials: "same-origin",
      body: JSON.stringify({ text: text })
    }).then(function (r) {
      if (r.status === 404) state.server = false;  // not on this gateway: don't ask again on this page
      if (!r.ok) throw new Error("tts " + r.status);
      return r.blob();
    }).then(function (blob) {
      if (!blob.size || !/^audio\//.test(blob.type)) throw new Error("tts body");
      return blob;
    });
  }

  function playBlob(blob, run) {
    return new Promise(function (resolve, reject) {
      if (run !== state.run) return resolve();
      state.url = URL.createObjectURL(blob);
      const audio = new Audio(state.url);
      state.audio = audio;
      audio.addEventListener("ended", function () { resolve(); });
      audio.addEventListener("error", function () { reject(new Error("audio")); });
      audio.play().catch(reject);
    }).then(function () {
      if (state.url) { URL.revokeObjectURL(state.url); state.url = null; }
      state.audio = null;
    });
  }

  function browserVoice(pieces, run) {
    const synth = window.speechSynthesis;
    if (!synth || typeof SpeechSynthesisUtterance === "undefined") {
      say("本设备暂不支持朗读，请查看文字。");
      return Promise.resolve();
    }
    return pieces.reduce(function (previous, piece) {
      return previous.then(function () {
        if (run !== state.run) return undefined;
        return new Promise(function (resolve) {
          const utterance = new SpeechSynthesisUtterance(spokenText(piece));
          utterance.lang = "zh-CN";
          utterance.rate = 0.9;
          utterance.onend = utterance.onerror = function () { resolve(); };
          synth.speak(utterance);
        });
      });
    }, Promise.resolve());
  }

  // Server voice piece by piece; from the first failure on, the browser reads the rest.
  function play(text, button) {
    stop();
    const run = state.run;
    state.button = button || null;
    markButton(state.button, true);
    const pieces = chunks(String(text || ""));
    let index = 0;
    function next() {
      if (run !== state.run || index >= pieces.length) return Promise.resolve();
      if (!state.server) return browserVoice(pieces.slice(index), run);
      return serverAudio(pieces[index]).then(function (blob) { return playBlob(blob, run); }).then(function () {
        index += 1;
        return next();
      }, function () { return browserVoice(pieces.slice(index), run); });
    }
    return next().then(function () {
      if (run === state.run) { markButton(state.button, false); state.button = null; }
    });
  }

  // ---- the widget's side ----
  function decorate(item, text) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "msg__read";
    markButton(button, false);
    button.addEventListener("click", function () {
      if (state.button === button) stop(); else play(text, button);
    });
    item.appendChild(button);
    if (autoOn()) queueAuto(text, button);
  }

  function elderMode() { return document.body.classList.contains("elder"); }
  function autoOn() { return state.auto && elderMode(); }

  // The messages of one reply arrive in one go: read them together, after what was playing stops.
  function queueAuto(text, button) {
    state.pending.push({ text: text, button: button });
    if (state.pending.length > 1) return;
    setTimeout(function () {
      const batch = state.pending;
      state.pending = [];
      play(batch.map(function (p) { return p.text; }).join("\n"), batch[0].button);
    }, 0);
  }

  // Any new line stops the reading, except bot lines that automatic reading is about to read.
  function onMessage(kind) {
    if (kind !== "bot" || !autoOn()) stop();
  }

  function applyAuto(toggle) {
    toggle.setAttribute("aria-pressed", String(state.auto));
    try { localStorage.setItem(AUTO_KEY, state.auto ? "1" : "0"); } catch (e) { /* this visit only */ }
  }

  function setUp() {
    const toggle = document.getElementById("autoread-toggle");
    if (!toggle) return;
    applyAuto(toggle);
    toggle.addEventListener("click", function () {
      state.auto = !state.auto;
      applyAuto(toggle);
      if (!state.auto) stop();
    });
  }

  window.AnjuReader = { spokenText: spokenText, play: play, stop: stop, decorate: decorate, onMessage: onMessage,
                        state: state };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp); else setUp();
})();
