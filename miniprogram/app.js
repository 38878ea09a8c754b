// The mini-program's entry: nothing happens at launch; the chat page logs in when it opens.
App({});
