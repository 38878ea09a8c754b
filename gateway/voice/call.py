"""One hotline call: the state machine between a caller's frames and the bot.

Frames in: a config frame first (see gateway.voice.audio), then binary audio, {"dtmf": "..."},
{"hangup": 1}, or {"eof": 1} (end of the caller's audio: a file streamed from a terminal).
Frames out: {"type": "bot", "text": ...} for every bot message, then the reply's audio as
binary frames in the caller's encoding and rate, paced at real time plus a small lead, then
{"type": "audio_end"}; {"type": "caller", "text"|"dtmf": ...} for what was heard or keyed;
{"type": "playback_stopped"} when the caller cut in; {"type": "hangup", "reason": ...} before
the call closes (1000); {"error": ...} before a close for a bad frame (1003/1009).

Audio is cut into utterances by energy endpointing (speech/vad.py); each is recognised and
becomes a turn, in order, one at a time. Recognition starts early, on a short pause
(`guess_after_ms` of quiet), while the endpointer waits out the rest of `end_silence_ms`: if the
caller goes on, that guess is dropped; if the utterance ends, its text is the turn's, so the
decode overlaps the trailing quiet. A bot reply is spoken as soon as its first sentence is
synthesised; the rest is made while that plays. Voiced audio or a key press while reply audio is
playing stops it (barge-in). The silence timer runs only while nothing is happening: neither
side speaking, no turn in progress, no keys pending, not on hold for staff.

With `CallServices.transfer` (gateway/voice/transfer.py) the call follows its place in the staff queue:
queue news is said as it comes, `#` cancels the queue, 1/2 answer the recording notice, staff's voice
goes down the call as bot audio does, and the ticket never outlives the call.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable, Optional, Protocol, Union

from gateway.conversation import BotMessage
from gateway.privacy import mask_text
from gateway.voice import prompts
from gateway.voice.audio import CLOSE_TOO_BIG, AudioFormat, FrameError, parse_json_frame
from gateway.voice.keypad import Keypad, entry_text, menu_prompt, valid_keys
from gateway.voice.recognition import RecognitionUnavailable
from gateway.voice.synthesis import SynthesisUnavailable, first_sentence
from speech.pcm import to_bytes, to_samples
from speech.vad import END, PAUSE, RESUMED, Endpointer

if TYPE_CHECKING:
    from gateway.voice.transfer import CallTransfer

logger = logging.getLogger(__name__)

CHUNK_S = 0.1  # reply audio goes out in 100 ms frames
GOODBYE_GRACE_S = 2.0


class CallGone(Exception):
    """The call's session ended elsewhere (staff, another device): the call says goodbye."""


class Link(Protocol):
    async def receive(self) -> Union[str, bytes, None]:
        """The next frame, or None when the caller is gone."""

    async def send_json(self, data: dict) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


@dataclass
class CallServices:
    recognise: Callable[[bytes, int], Awaitable[str]]  # PCM16, rate -> text; RecognitionUnavailable
    turn: Callable[[str], Awaitable[list[BotMessage]]]  # text -> bot messages; CallGone
    speak: Callable[[str, int], Awaitable[bytes]]  # text, rate -> PCM16; SynthesisUnavailable
    transfer: Optional["CallTransfer"] = None  # the call's place in the staff queue (gateway/voice/transfer.py)


@dataclass(frozen=True)
class CallLimits:
    silence_timeout_s: float = 10.0
    max_call_s: float = 1800.0
    playback_lead_s: float = 0.3
    max_frame_bytes: int = 32000
    menu_wait_s: float = 2.0
    entry_timeout_s: float = 5.0
    tick_s: float = 0.1
    transfer_poll_s: float = 1.0
    end_silence_ms: int = 700  # quiet that ends an utterance (the fixtures pause up to 540 ms mid-sentence)
    guess_after_ms: int = 300  # quiet after which recognition starts on a guess (0: wait for the end)


_TICK = object()
_SOURCE_LINE = re.compile(r"^\s*[（(]依据[:：].*[）)]\s*$", re.MULTILINE)
_BULLET = re.compile(r"^\s*[·•\-*]\s*", re.MULTILINE)


def spoken_form(text: str) -> str:
    """A bot message as said on the phone: no source citations or list bullets, lines as pauses."""
    text = _BULLET.sub("", _SOURCE_LINE.sub("", text))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "".join(line if line[-1] in "。！？；：，）" else line + "。" for line in lines)


class Call:
    def __init__(self, link: Link, services: CallServices, fmt: AudioFormat, limits: CallLimits = CallLimits(),
                 clock: Callable[[], float] = time.monotonic):
        self._link = link
        self._services = services
        self.fmt = fmt
        self.limits = limits
        self._clock = clock
        self._vad = Endpointer(fmt.sample_rate, end_silence_ms=limits.end_silence_ms, pause_ms=limits.guess_after_ms)
        self._guess: Optional[asyncio.Task] = None  # recognition of the utterance so far, started on a pause
        self._dropped: set[asyncio.Task] = set()  # guesses the caller talked past, being cancelled
        self._keypad = Keypad(limits.menu_wait_s, limits.entry_timeout_s)
        self._frames: asyncio.Queue = asyncio.Queue()
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._send_lock = asyncio.Lock()
        self._playback: Optional[asyncio.Task] = None
        self._worker: Optional[asyncio.Task] = None
        self._busy = False
        self._interrupts = 0  # bumped whenever the caller speaks or keys: a reply made meanwhile stays silent
        self._announcements = 0  # queue news waiting in the inbox: not the caller going on, so no reply is dropped
        self._gone = False
        self._prompted = False
        self._idle_since = 0.0
        self._last_reply: list[BotMessage] = []
        self._buttons: list = []
        self.turns = 0

    # -- the main loop -------------------------------------------------------------------
    async def run(self) -> str:
        """Runs the call to its end; returns why it ended (caller, silence, max_length, gone, bad_frame, disconnected)."""
        started = self._idle_since = self._clock()
        reader = asyncio.ensure_future(self._read())
        self._worker = asyncio.ensure_future(self._work())
        follower = None
        if self._services.transfer is not None:
            self._services.transfer.attach(self.fmt.sample_rate, self._staff_audio)
            follower = asyncio.ensure_future(self._follow_transfer())
        self._inbox.put_nowait(("say", prompts.GREETING))
        ended = "disconnected"
        try:
            while True:
                try:
                    frame = await asyncio.wait_for(self._frames.get(), self.limits.tick_s)
                except asyncio.TimeoutError:
                    frame = _TICK
                if frame is None:
                    return ended
                try:
                    reason = None if frame is _TICK else await self._on_frame(frame)
                except FrameError as exc:
                    logger.info("voice.call.bad_frame code=%d", exc.code)
                    await self._stop_playback(quiet=True)
                    await self._send_json({"error": exc.message})
                    await self._link.close(exc.code)
                    ended = "bad_frame"
                    return ended
                reason = reason or await self._on_tick(started)
                if reason:
                    ended = reason
                    return reason
        finally:
            waiting = [item[2] for item in self._drain_inbox() if item[0] == "audio" and len(item) > 2]
            tasks = [t for t in (reader, self._worker, self._playback, follower, self._guess, *self._dropped, *waiting)
                     if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._end_transfer(ended)

    def _drain_inbox(self) -> list[tuple]:
        items = []
        while not self._inbox.empty():
            items.append(self._inbox.get_nowait())
        return items

    async def _follow_transfer(self) -> None:
        """While the call has a ticket: its queue position, staff joining, staff's messages, said to the caller."""
        transfer = self._services.transfer
        while True:
            await asyncio.sleep(self.limits.transfer_poll_s)
            try:
                was_active = transfer.state == "active"
                texts = await transfer.poll()
                if transfer.state == "active" and not was_active:
                    await self._stop_playback()  # staff are here: the queue message need not play on
                for text in texts:
                    self._announcements += 1
                    self._inbox.put_nowait(("announce", text))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # redis away a moment: the next look tries again
                logger.warning("voice.call.transfer_poll_failed error=%s", type(exc).__name__)

    async def _staff_audio(self, pcm: bytes) -> None:
        """Staff's voice (PCM16 at the call's rate) down the call, as bot audio goes."""
        await self._send_bytes(self.fmt.encode(pcm))

    def _bridged(self) -> bool:
        return self._services.transfer is not None and self._services.transfer.bridged

    async def _end_transfer(self, reason: str) -> None:
        """A ticket never outlives its call: waiting is cancelled, a session with staff ends."""
        if self._services.transfer is None:
            return
        try:
            await self._services.transfer.call_ended(reason)
        except Exception as exc:
            logger.warning("voice.call.transfer_end_failed error=%s", type(exc).__name__)

    async def _read(self) -> None:
        try:
            while True:
                frame = await self._link.receive()
                await self._frames.put(frame)
                if frame is None:
                    return
        except Exception:  # a transport error is the caller going away
            logger.info("voice.call.receive_ended")
            await self._frames.put(None)

    async def _on_frame(self, frame: Union[str, bytes]) -> Optional[str]:
        if isinstance(frame, bytes):
            self._on_audio(frame)
            if self._vad.in_speech:
                await self._caller_acted()
            return None
        data = parse_json_frame(frame)
        if "hangup" in data:
            await self._stop_playback(quiet=True)
            await self._send_json({"type": "hangup", "reason": "caller"})
            await self._link.close(1000)
            return "caller"
        if "dtmf" in data:
            keys = valid_keys(data["dtmf"])
            if keys is None:
                raise FrameError(prompts.BAD_DTMF)
            await self._caller_acted()
            transfer = self._services.transfer
            if transfer is not None and not self._keypad.busy and transfer.cancels(keys):
                self._inbox.put_nowait(("cancel_queue",))
                return None
            if transfer is not None and not self._keypad.busy and transfer.answers_consent(keys):
                self._inbox.put_nowait(("consent", keys))
                return None
            for entry in self._keypad.press(keys, self._clock()):
                self._enqueue_entry(entry)
            return None
        if "eof" in data:
            self._drop_guess()  # the last few samples may be speech the guess has not heard
            rest = self._vad.flush()
            if rest is not None:
                self._inbox.put_nowait(("audio", rest))
            return None
        if "config" in data:
            raise FrameError(prompts.CONFIG_TWICE)
        raise FrameError(prompts.UNKNOWN_CALL_FRAME)

    def _on_audio(self, frame: bytes) -> None:
        if len(frame) > self.limits.max_frame_bytes:
            raise FrameError(prompts.FRAME_TOO_BIG.format(limit=self.limits.max_frame_bytes), CLOSE_TOO_BIG)
        if self._bridged():  # staff hear the caller directly; the bot stays out of it
            self._drop_guess()
            self._services.transfer.bridge.feed(self.fmt.decode(frame))
            return
        for event in self._vad.events(to_samples(self.fmt.decode(frame))):
            if event.kind == PAUSE:
                self._start_guess(event.samples)
            elif event.kind == RESUMED:
                self._drop_guess()
            elif event.kind == END:  # a guess still here heard all of it but trailing quiet
                self._inbox.put_nowait(("audio", event.samples, self._guess))
                self._guess = None

    def _start_guess(self, samples) -> None:
        self._drop_guess()
        self._guess = asyncio.ensure_future(self._services.recognise(to_bytes(samples), self.fmt.sample_rate))

    def _drop_guess(self) -> None:
        """The caller went on after a pause: what was recognised so far is not the utterance."""
        guess, self._guess = self._guess, None
        if guess is None:
            return
        if not guess.done():
            guess.cancel()
            self._dropped.add(guess)
            guess.add_done_callback(self._dropped.discard)
        logger.info("voice.call.guess_dropped")

    async def _caller_acted(self) -> None:
        """Speech or keys from the caller: playback stops (barge-in) and the silence timer restarts."""
        self._prompted = False
        self._idle_since = self._clock()
        self._interrupts += 1
        await self._stop_playback()

    def _enqueue_entry(self, entry: str) -> None:
        text = entry_text(entry, self._buttons)
        self._inbox.put_nowait(("repeat", entry) if text is None else ("keys", entry, text))

    async def _on_tick(self, started: float) -> Optional[str]:
        now = self._clock()
        if now - started > self.limits.max_call_s:
            return await self._goodbye(prompts.GOODBYE_MAX, "max_length")
        if self._gone:
            return await self._goodbye(prompts.GOODBYE_GONE, "gone")
        entry = self._keypad.due(now)
        if entry is not None:
            self._enqueue_entry(entry)
        if not self._idle():
            self._idle_since = now
        elif now - self._idle_since > self.limits.silence_timeout_s:
            if self._prompted:
                return await self._goodbye(prompts.GOODBYE_SILENCE, "silence")
            self._prompted = True
            self._idle_since = now
            self._inbox.put_nowait(("say", prompts.STILL_THERE))
        return None

    def _idle(self) -> bool:
        playing = self._playback is not None and not self._playback.done()
        holding = self._services.transfer is not None and self._services.transfer.holding  # on hold for staff
        return not (playing or holding or self._busy or not self._inbox.empty() or self._vad.in_speech or self._keypad.busy)

    async def _goodbye(self, text: str, reason: str) -> str:
        logger.info("voice.call.ending reason=%s turns=%d", reason, self.turns)
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await self._stop_playback(quiet=True)
        await self._send_json({"type": "bot", "text": text})
        try:
            pcm = await self._services.speak(text, self.fmt.sample_rate)
            seconds = len(pcm) / 2 / self.fmt.sample_rate
            await asyncio.wait_for(self._play(pcm), seconds + GOODBYE_GRACE_S)
        except (SynthesisUnavailable, asyncio.TimeoutError):
            pass
        await self._send_json({"type": "hangup", "reason": reason})
        await self._link.close(1000)
        return reason

    # -- turns, one at a time --------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            item = await self._inbox.get()
            self._busy = True
            try:
                await self._handle(item)
            except CallGone:
                self._gone = True
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("voice.call.turn_failed")
                await self._reply([BotMessage(text=prompts.SORRY)], remember=False)
            finally:
                self._busy = False

    async def _handle(self, item: tuple) -> None:
        kind = item[0]
        if kind == "say":
            await self._reply([BotMessage(text=item[1])], remember=False)
        elif kind == "announce":
            self._announcements -= 1
            if self._bridged():  # staff are talking: their typed words are shown, not spoken over them
                await self._send_json({"type": "bot", "text": item[1]})
            else:
                await self._reply([BotMessage(text=item[1])], remember=False)
        elif kind == "consent":
            await self._send_json({"type": "caller", "dtmf": item[1]})
            await self._reply([BotMessage(text=await self._services.transfer.consent(item[1]))], remember=False)
        elif kind == "cancel_queue":
            await self._send_json({"type": "caller", "dtmf": "#"})
            await self._reply([BotMessage(text=await self._services.transfer.cancel())], remember=False)
        elif kind == "repeat":
            await self._send_json({"type": "caller", "dtmf": item[1]})
            if self._last_reply:
                await self._reply(self._last_reply)
            else:
                await self._reply([BotMessage(text=prompts.NOTHING_TO_REPEAT)], remember=False)
        elif kind == "keys":
            await self._send_json({"type": "caller", "dtmf": item[1]})
            await self._turn(item[2])
        elif kind == "audio":
            started, guess = self._clock(), item[2] if len(item) > 2 else None
            try:
                if guess is not None:  # recognition began on the pause before the utterance ended
                    text = await guess
                else:
                    text = await self._services.recognise(to_bytes(item[1]), self.fmt.sample_rate)
                logger.info("voice.call.recognised audio_s=%.1f took_ms=%d guessed=%s",
                            len(item[1]) / self.fmt.sample_rate, 1000 * (self._clock() - started), guess is not None)
            except RecognitionUnavailable as exc:
                logger.warning("voice.call.recognition_unavailable error=%s", exc)
                await self._reply([BotMessage(text=prompts.RECOGNITION_DOWN)], remember=False)
                return
            if not text.strip():
                await self._reply([BotMessage(text=prompts.NOT_HEARD)], remember=False)
                return
            logger.info("voice.call.heard chars=%d text=%s", len(text), mask_text(text)[:40])
            await self._send_json({"type": "caller", "text": text})
            await self._turn(text)

    async def _turn(self, text: str) -> None:
        self.turns += 1
        started = self._clock()
        transfer = self._services.transfer
        messages = await transfer.intercept(text) if transfer is not None else None  # booking a call-back
        if messages is None:
            messages = await self._services.turn(text)
        if transfer is not None:
            messages = await transfer.adapt(messages)
        logger.info("voice.call.bot took_ms=%d messages=%d", 1000 * (self._clock() - started), len(messages))
        await self._reply(messages)

    async def _reply(self, messages: list[BotMessage], remember: bool = True) -> None:
        """Bot messages as text frames, then all of them as one stretch of audio (keys said last).

        A bot's reply (`remember`) starts playing once its first sentence is synthesised, the rest
        made meanwhile; the call's own prompts are cached whole and go as they are."""
        buttons = next((m.buttons for m in reversed(messages) if m.buttons), [])
        if remember:
            self._last_reply, self._buttons = messages, buttons
        for m in messages:
            frame: dict = {"type": "bot", "text": m.text or ""}
            if m.buttons:
                frame["buttons"] = [b.model_dump() for b in m.buttons]
            if m.custom:
                frame["custom"] = m.custom
            await self._send_json(frame)
        spoken = "".join(spoken_form(m.text) for m in messages if m.text and m.text.strip())
        if buttons:
            spoken += "请按键选择：" + menu_prompt(buttons)
        if not spoken:
            return
        head, rest = first_sentence(spoken) if remember else (spoken, "")
        interrupts, started = self._interrupts, self._clock()
        try:
            pcm = await self._services.speak(head, self.fmt.sample_rate)
            logger.info("voice.call.tts chars=%d of=%d took_ms=%d", len(head), len(spoken),
                        1000 * (self._clock() - started))
        except SynthesisUnavailable:
            await self._send_json({"type": "audio_unavailable"})
            return
        if interrupts != self._interrupts or self._keypad.busy or self._inbox.qsize() > self._announcements:
            await self._send_json({"type": "playback_stopped"})  # the caller went on while it was being made
            return
        more = asyncio.ensure_future(self._services.speak(rest, self.fmt.sample_rate)) if rest else None
        self._playback = asyncio.ensure_future(self._play(pcm, more))
        await asyncio.wait([self._playback])

    # -- playback --------------------------------------------------------------------------
    async def _play(self, pcm: bytes, more: Optional[asyncio.Future] = None) -> None:
        """Sends PCM16 (then `more`'s, once made) at real time plus the lead, in the caller's encoding,
        then waits until the caller has heard it."""
        chunk = max(1, int(self.fmt.bytes_per_second * CHUNK_S))
        chunk -= chunk % self.fmt.bytes_per_sample
        started, sent_s = self._clock(), 0.0
        try:
            while True:
                audio = self.fmt.encode(pcm)
                for offset in range(0, len(audio), chunk):
                    ahead = sent_s - (self._clock() - started) - self.limits.playback_lead_s
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                    piece = audio[offset:offset + chunk]
                    await self._send_bytes(piece)
                    sent_s += len(piece) / self.fmt.bytes_per_second
                if more is None:
                    break
                try:
                    pcm, more = await more, None
                except Exception as exc:  # SynthesisUnavailable: the first sentence was said; the rest cannot be
                    logger.warning("voice.call.tts_rest_failed error=%s", type(exc).__name__)
                    break
        finally:
            if more is not None:
                more.cancel()  # cut short: the rest of the reply is not needed
        remaining = sent_s - (self._clock() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)
        await self._send_json({"type": "audio_end"})

    async def _stop_playback(self, quiet: bool = False) -> None:
        task = self._playback
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if not quiet:
            logger.info("voice.call.barge_in")
            await self._send_json({"type": "playback_stopped"})

    async def _send_json(self, data: dict) -> None:
        async with self._send_lock:
            await self._link.send_json(data)

    async def _send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            await self._link.send_bytes(data)
