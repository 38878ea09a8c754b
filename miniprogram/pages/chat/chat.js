// The chat page (a Component, so miniprogram-simulate can load it; its page lifecycle is in methods).
// wx.login -> POST /api/wx/login -> POST /api/wx/chat with the token (utils/api.js); quick replies,
// an elder-mode switch (larger text, and the bot offers a video call to staff), the video offer's
// buttons, appointment slots, a button that opens the video page once the citizen is queued, and the
// material uploads of an online application: per item 拍照或相册 (wx.chooseMedia) and 选择PDF文件
// (wx.chooseMessageFile), checked here (10 MB) before wx.uploadFile; the core's verdict is a bot line.
const api = require("../../utils/api");
const chat = require("../../utils/chat");

Component({
  data: {
    items: [],
    input: "",
    busy: false,
    status: "正在登录…",
    elder: false,
    lastId: "",
    quickReplies: chat.QUICK_REPLIES,
  },
  methods: {
    onLoad() {
      this.setData({ elder: chat.readElder() });
      return api.login()
        .then(() => this.setData({ status: "已连接，请输入您的问题。" }))
        .catch((err) => this.setData({ status: err.message }));
    },

    append(items) {
      if (!items.length) return;
      const all = this.data.items.concat(items);
      this.setData({ items: all, lastId: all[all.length - 1].id });
    },

    send(text, shown) {
      text = (text || "").trim();
      if (!text) {
        this.setData({ status: "请输入内容后再发送。" });
        return Promise.resolve();
      }
      if (this.data.busy) return Promise.resolve();
      this.append([chat.item("user", shown || text)]);
      this.setData({ input: "", busy: true });
      return api.chat(text, chat.metadata(this.data.elder))
        .then((body) => this.append(chat.toItems(body.messages)))
        .catch((err) => this.append([chat.item("error", err.message)]))
        .then(() => this.setData({ busy: false }));
    },

    onInput(e) { this.setData({ input: e.detail.value }); },
    onSend() { return this.send(this.data.input); },
    onQuick(e) {
      const { ask, title } = e.currentTarget.dataset;
      return this.send(ask, title);
    },

    // A button of a bot message (the video offer's included): answered once, then the buttons go.
    onChoice(e) {
      const { id, payload, title } = e.currentTarget.dataset;
      this.setData({ items: this.data.items.map((it) => (it.id === id ? Object.assign({}, it, { buttons: [] }) : it)) });
      return this.send(payload, title);
    },

    onOpenVideo(e) {
      return wx.navigateTo({ url: e.currentTarget.dataset.page });
    },

    onBook(e) {
      const { id, slot } = e.currentTarget.dataset;
      this.setData({ items: this.data.items.map((it) => (it.id === id ? Object.assign({}, it, { slots: [] }) : it)) });
      return api.book(slot)
        .then((body) => this.append([chat.item("bot", body.text)]))
        .catch((err) => this.append([chat.item("error", err.message)]));
    },

    // --- material uploads (custom.upload) -------------------------------------------------------
    entry(id, key) {
      const it = this.data.items.find((x) => x.id === id);
      return it && (it.uploads || []).find((u) => u.key === key);
    },

    setEntry(id, key, patch) {
      this.setData({
        items: this.data.items.map((it) => (it.id !== id ? it : Object.assign({}, it, {
          uploads: it.uploads.map((u) => (u.key === key ? Object.assign({}, u, patch) : u)),
        }))),
      });
    },

    onPickPhoto(e) {
      const { id, key } = e.currentTarget.dataset;
      return this.pick(id, key, (done) => wx.chooseMedia({
        count: 1, mediaType: ["image"], sourceType: ["album", "camera"], sizeType: ["compressed"],
        success: (res) => done(res.tempFiles && res.tempFiles[0] && { path: res.tempFiles[0].tempFilePath, size: res.tempFiles[0].size }),
        fail: (err) => done(null, err),
      }));
    },

    onPickPdf(e) {
      const { id, key } = e.currentTarget.dataset;
      return this.pick(id, key, (done) => wx.chooseMessageFile({
        count: 1, type: "file", extension: ["pdf"],
        success: (res) => done(res.tempFiles && res.tempFiles[0] && { path: res.tempFiles[0].path, size: res.tempFiles[0].size }),
        fail: (err) => done(null, err),
      }));
    },

    // Opens a picker; a chosen file is checked, then uploaded. Cancelling the picker changes nothing.
    pick(id, key, open) {
      const entry = this.entry(id, key);
      if (!entry || entry.state !== "waiting") return Promise.resolve();
      return new Promise((resolve) => open((file, err) => resolve({ file, err })))
        .then(({ file, err }) => {
          if (file && file.path) return this.sendFile(id, key, file);
          if (err && !/cancel/i.test(err.errMsg || "")) {
            this.setEntry(id, key, { note: "无法打开相册、相机或文件，请在设置中允许后重试。" });
          }
          return undefined;
        });
    },

    sendFile(id, key, file) {
      const entry = this.entry(id, key);
      if (!entry || entry.state !== "waiting") return Promise.resolve();
      const refusal = chat.uploadRefusal(entry, file.size);
      if (refusal) {
        this.setEntry(id, key, { note: "未上传：" + refusal });
        this.append([chat.item("error", "“" + entry.name + "”未上传：" + refusal)]);
        return Promise.resolve();
      }
      this.setEntry(id, key, { state: "uploading", note: "上传中…" });
      const progress = (p) => {
        const current = this.entry(id, key);
        if (current && current.state === "uploading") {
          this.setEntry(id, key, { note: p >= 100 ? "已上传，正在识别核验，请稍候…" : "上传中… " + p + "%" });
        }
      };
      return api.upload(entry.application_id, key, entry.token, file.path, progress)
        .then((body) => {
          if (chat.UPLOAD_DONE.indexOf(body.status) >= 0) {
            this.setEntry(id, key, { state: "done", note: body.status_name || "已上传" });
            this.append([chat.item("bot", body.message || "“" + entry.name + "”已上传。")]);
          } else {
            this.setEntry(id, key, { state: "waiting", note: body.status_name || "" });
            if (body.message) this.append([chat.item("bot", body.message)]);
          }
        })
        .catch((err) => {
          if (err.code === "material_not_needed") {     // already uploaded (e.g. from another phone)
            this.setEntry(id, key, { state: "done", note: "已上传" });
            this.append([chat.item("bot", err.message)]);
            return;
          }
          this.setEntry(id, key, { state: "waiting", note: "未上传：" + err.message });
          this.append([chat.item("bot", "“" + entry.name + "”未能上传：" + err.message)]);
        });
    },

    onElderChange(e) {
      const on = Boolean(e.detail.value);
      chat.saveElder(on);
      this.setData({ elder: on });
    },
  },
});
