"""Speech in the gateway: the hotline's call state machine (/ws/voice), and the clients behind
dictation (/ws/speech) and read-aloud (/api/tts).

The gateway never loads a recognition model: audio goes to the speech server (`python -m
speech`, vosk-server protocol) through `recognition.SpeechClient`. Text-to-speech runs
espeak-ng through speech.tts in worker threads (`synthesis.Synthesizer`).
"""
