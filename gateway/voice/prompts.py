"""What the hotline and the speech endpoints say in their own voice (simplified Chinese)."""
from gateway.voice.keypad import menu_prompt

GREETING = ("您好，这里是住房公积金智能语音服务。请直接说出您的问题，例如“怎么提取公积金”。"
            "也可以按键选择：" + menu_prompt() + "输入身份证号等数字时，请以井号键结束，字母X请按星号键。")
NOT_HEARD = "抱歉，没有听清，请再说一遍，或者使用按键选择。"
STILL_THERE = "您还在吗？请说出您的问题，或者按键选择；按0转人工。"
GOODBYE_SILENCE = "很久没有听到您的声音，本次通话先结束了。感谢您的来电，再见。"
GOODBYE_MAX = "本次通话时间已到上限，先为您结束通话。如需继续办理，请再次来电，再见。"
GOODBYE_GONE = "本次会话已结束。感谢您的来电，再见。"
RECOGNITION_DOWN = "语音识别暂时不可用，请使用按键操作：" + menu_prompt()
SORRY = "抱歉，系统出了点问题，请再说一遍，或者按0转人工。"
NOTHING_TO_REPEAT = "还没有可以重听的内容。" + menu_prompt()

# Endpoint messages (JSON "error"/"detail"), not spoken.
NEED_SESSION = "会话不存在或已过期，请刷新页面后再使用语音功能。"
SPEECH_UNAVAILABLE = "语音识别暂时不可用，请改用文字输入；急需办理可拨打 12329 服务热线。"
TTS_UNAVAILABLE = "语音朗读暂时不可用，请阅读文字回复；急需办理可拨打 12329 服务热线。"
SESSION_BUSY = "服务暂时繁忙，请稍后再试；急需办理可拨打 12329 服务热线。"
FIRST_FRAME_LATE = "没有收到音频格式设置，连接已关闭。请先发送 {\"config\": {\"sample_rate\": 16000}}。"
AUDIO_BEFORE_CONFIG = "请先发送音频格式 {\"config\": {\"sample_rate\": 16000}}，再发送音频。"
IDLE = "长时间没有收到音频，连接已关闭。"
AUDIO_TOO_LONG = "录音太长了（上限 {seconds} 秒），请分段说。"
FRAME_TOO_BIG = "音频帧太大了（上限 {limit} 字节），请每帧发送不超过 1 秒的音频。"
CONFIG_TWICE = "音频格式只能在开始时设置一次。"
UNKNOWN_FRAME = "无法识别的消息：请发送二进制音频帧，或 {\"eof\": 1} 表示说完。"
UNKNOWN_CALL_FRAME = "无法识别的消息：通话中请发送二进制音频帧、{\"dtmf\": \"1\"} 或 {\"hangup\": 1}。"
BAD_DTMF = "按键格式错误：dtmf 只能包含 0-9、* 和 #。"

FIXED_PROMPTS = (GREETING, NOT_HEARD, STILL_THERE, GOODBYE_SILENCE, GOODBYE_MAX, GOODBYE_GONE, RECOGNITION_DOWN,
                 SORRY, NOTHING_TO_REPEAT)
