"""Speech for the voice hotline: recognisers (Whisper, vosk), G.711, text-to-speech, and a
vosk-protocol speech server (`python -m speech`).

A library: plain arguments in, plain results out; it never reads the environment or imports
FastAPI. Heavy dependencies (faster-whisper, vosk) are imported only by the engine that needs them.
"""
