// The video page: a web-view on the gateway's /wx/video page, which shows the queue, the recording
// notice and the call with staff (the web widget's own handoff code). Opened from the chat page or
// from the customer-service card as pages/video/video?ticket=<id>&key=<key>.
const api = require("../../utils/api");
const chat = require("../../utils/chat");

const MISSING = "没有找到排队信息，请返回聊天页面，再说一次“转人工”。";

Component({
  data: { src: "", error: "" },
  methods: {
    onLoad(query) {
      const src = api.videoPageSrc(query && query.ticket, query && query.key, chat.readElder());
      this.setData(src ? { src: src, error: "" } : { src: "", error: MISSING });
    },
  },
});
