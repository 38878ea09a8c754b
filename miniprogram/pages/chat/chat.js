// The chat page (a Component, so miniprogram-simulate can load it; its page lifecycle is in methods).
// wx.login -> POST /api/wx/login -> POST /api/wx/chat with the token (utils/api.js); quick replies,
// an elder-mode switch (larger text, and the bot offers a video call to staff), the video offer's
// buttons, appointment slots, and a button that opens the video page once the citizen is queued.
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

    onElderChange(e) {
      const on = Boolean(e.detail.value);
      chat.saveElder(on);
      this.setData({ elder: on });
    },
  },
});
