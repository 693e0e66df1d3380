"""Hands-free conversation: microphone audio in, turns found by the VAD, replies spoken back.

One HandsFree per page. The page streams 16 kHz int16 microphone frames over its WebSocket;
they are handled in this session's own thread (VAD, live transcript), and each reply runs in a
thread of its own, so listening goes on while voxloop talks: that is what barge-in needs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxloop.audio import SAMPLE_RATE
from voxloop.errors import VoxloopError
from voxloop.live import LiveSessions
from voxloop.llm import Message
from voxloop.pipeline import Done, Pipeline, ReplyText, Speech, Turn, TurnRequest
from voxloop.recordings import normalize
from voxloop.stt import PartialTranscriber, get_transcriber
from voxloop.vad import FRAME_MS, FRAME_SAMPLES, TurnDetector, TurnEvent
from voxloop.wake import Wake, WakeMatcher

log = logging.getLogger("voxloop.handsfree")
RELEASE_POLL_SECONDS = 0.01


@dataclass(frozen=True)
class Options:
    """What the page chose when the conversation started."""

    voice: str | None = None
    speed: float | None = None
    system_prompt: str | None = None
    wake: bool = False


@dataclass
class Reply:
    """The answer being spoken: its pieces of text and how long each sounds."""

    turn: int
    user_text: str
    pieces: list[tuple[str, float]] = field(default_factory=list)
    remembered: bool = False  # the whole reply is in the history already
    stopped: bool = False  # cut off by the person speaking
    first_audio_at: float | None = None  # time.monotonic() of the first chunk sent
    stored_id: int | None = None  # the turn's id in the person's memory, once stored
    heard_text: str | None = None  # what was heard, after a barge-in

    def playing(self, now: float) -> bool:
        """Whether the page is (by our estimate) still playing this reply."""
        if self.stopped or self.first_audio_at is None:
            return False
        return now < self.first_audio_at + self.seconds

    @property
    def seconds(self) -> float:
        """Audio sent so far, in seconds."""
        return sum(seconds for _, seconds in self.pieces)

    def heard(self, now: float) -> str:
        """The words the person heard before `now` (whole pieces, then a share of words)."""
        if self.first_audio_at is None:
            return ""
        left = now - self.first_audio_at
        words: list[str] = []
        for text, seconds in self.pieces:
            piece = text.split()
            share = 1.0 if left >= seconds else max(0.0, left / seconds)
            words += piece[: round(len(piece) * share)]
            left -= seconds
            if left <= 0:
                break
        return " ".join(words)


@dataclass
class Answer:
    """An answer being prepared: spoken only once `release` is set."""

    reply: Reply
    cancel: threading.Event
    release: threading.Event
    thread: threading.Thread | None = None

    def wait_for_release(self) -> bool:
        """Block until released (True) or cancelled (False)."""
        while not self.release.wait(RELEASE_POLL_SECONDS):
            if self.cancel.is_set():
                return False
        return not self.cancel.is_set()


class HandsFree:
    """One person's hands-free conversation, fed with microphone audio by the server."""

    def __init__(
        self, pipeline: Pipeline, live: LiveSessions, client_id: str, options: Options
    ) -> None:
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self.live = live
        self.client_id = client_id
        self.options = options
        self.detector = TurnDetector(self.settings.vad)
        self.history: list[Message] = []
        self.chat: list[dict[str, str]] = []
        self.version = 0  # bumped on every change of `chat`, for the page to poll
        self.latencies_ms: list[float] = []  # end of speech -> first audio, per answer
        self._frames: queue.Queue[np.ndarray | None] = queue.Queue()
        self._partial: PartialTranscriber | None = None
        self._fed_frames = 0
        self._reply: Reply | None = None
        self._reply_thread: threading.Thread | None = None
        self._speculation: Answer | None = None
        self._awake_until = 0.0
        self.wake = WakeMatcher(self.settings)
        self._opening_heard: bool | None = None  # the second opinion on this utterance's opening
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._listen, name="voxloop-listen", daemon=True)
        self._thread.start()

    def feed(self, pcm16: bytes) -> None:
        """Queue microphone audio (int16 mono 16 kHz); returns at once."""
        self._frames.put(np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0)

    def busy(self) -> bool:
        """Whether an answer is being written or (by our estimate) still being played."""
        reply = self._reply
        if reply is None or reply.stopped:
            return False
        answering = self._reply_thread is not None and self._reply_thread.is_alive()
        return answering or reply.playing(time.monotonic())

    def announce(self, text: str) -> None:
        """Show an alert voxloop speaks on its own (a timer) in the chat, and keep its words for
        the echo filter: the microphone will hear them."""
        self._add_to_chat({"role": "assistant", "content": text})
        with self._lock:
            self.history.append(Message(role="assistant", content=text))

    def close(self) -> None:
        """End the conversation: stop listening and any answer."""
        self._frames.put(None)
        self.live.stop(self.client_id)

    def _listen(self) -> None:
        if self.options.wake:
            self.wake.prepare()
        while (samples := self._frames.get()) is not None:
            try:
                for event in self.detector.feed(samples):
                    self._on_turn_event(event)
                self._update_partial()
            except Exception:  # keep listening whatever one utterance did
                log.exception("hands-free listening failed")

    def _on_turn_event(self, event: TurnEvent) -> None:
        vad = self.settings.vad
        if event.kind == "start":
            self._speech_started()
        elif event.kind == "pause":  # maybe the end: prepare the answer, but keep it quiet
            self._speculate(time.monotonic() - vad.speculate_ms / 1000)
        elif event.kind == "resume" and self._speculation is not None:
            self._speculation.cancel.set()  # they went on speaking: that answer was premature
            self._speculation = None
        elif event.kind == "end" and event.audio is not None:
            self._speech_ended(event.audio, time.monotonic() - vad.silence_ms / 1000)

    def _speech_started(self) -> None:
        now = time.monotonic()
        reply = self._reply
        if reply is not None and self.busy():
            self.live.stop(self.client_id)  # barge-in: generation and playback stop now
            reply.stopped = True
            self._keep_heard_part(reply, now)
            self._send({"type": "state", "value": "interrupted"})
        engine = self.settings.stt.partial_engine
        self._partial = get_transcriber(self.settings, engine).stream()
        self._fed_frames = 0
        self._opening_heard = None
        self._send({"type": "state", "value": "hearing"})

    def _update_partial(self) -> None:
        frames = self.detector.utterance
        # While an answer is being prepared the transcript is known: leave the CPU to it.
        if self._partial is None or not self.detector.speaking or self._speculation is not None:
            return
        if (len(frames) - self._fed_frames) * FRAME_MS < self.settings.handsfree.partial_every_ms:
            return
        text = self._partial.add(np.concatenate(frames[self._fed_frames :]))
        self._fed_frames = len(frames)
        self._send({"type": "partial", "text": text})

    def _speculate(self, speech_ended_at: float) -> None:
        """Start answering what was said so far; the audio is held until the turn ends."""
        if self._partial is None:
            return
        frames = self.detector.utterance
        text = self._partial.add(np.concatenate(frames[self._fed_frames :])).strip()
        self._fed_frames = len(frames)
        if answer := self._what_to_answer(text, frames, final=False):
            self._speculation = self._start_answer(answer, speech_ended_at, held=True)

    def _speech_ended(self, utterance: np.ndarray, speech_ended_at: float) -> None:
        partial, self._partial = self._partial, None
        speculation, self._speculation = self._speculation, None
        if partial is None:
            return
        if speculation is not None and not speculation.cancel.is_set():
            self._reply_thread = speculation.thread
            speculation.release.set()  # the turn really ended: let the prepared answer speak
            partial.close()  # its text is known; decoding again would slow the answer
            self._send({"type": "partial", "text": speculation.reply.user_text})
            return
        partial.add(utterance[self._fed_frames * FRAME_SAMPLES :])  # the last bit of speech
        text = partial.finish().text.strip()
        self._send({"type": "partial", "text": text})
        if answer := self._what_to_answer(text, [utterance]):
            self._reply_thread = self._start_answer(answer, speech_ended_at).thread
        else:
            self._send({"type": "state", "value": "listening"})

    def _what_to_answer(self, text: str, audio: list[np.ndarray], final: bool = True) -> str:
        """The text to answer ('' for nothing: no words, our own echo, or asleep); `final`
        once the utterance has ended."""
        if not text or self._is_echo(text):
            return ""
        return self._after_wake_phrase(text, audio, final) if self.options.wake else text

    def _start_answer(self, text: str, speech_ended_at: float, held: bool = False) -> Answer:
        turn_number, cancel = self.live.begin_turn(self.client_id)
        answer = Answer(Reply(turn_number, text), cancel, threading.Event())
        if not held:
            answer.release.set()
        answer.thread = threading.Thread(
            target=self._answer, args=(answer, speech_ended_at), name="voxloop-reply", daemon=True
        )
        answer.thread.start()
        return answer

    def _is_echo(self, text: str) -> bool:
        last_reply = self.history[-1]["content"] if self.history else ""
        return is_echo(text, last_reply, self.settings.handsfree.echo_overlap)

    def _after_wake_phrase(self, text: str, audio: list[np.ndarray], final: bool = True) -> str:
        """In wake mode: '' while asleep or for the bare phrase; else what to answer."""
        now = time.monotonic()
        asleep = now > self._awake_until
        wake = self.wake.in_transcript(text)
        # Awake, a misheard phrase is only a few extra words: no second opinion is worth its
        # time then, unless it already heard the phrase open this utterance.
        if wake is None and (asleep or self._opening_heard):
            wake = self._second_opinion(text, audio, final)
        if wake is None and asleep:
            self._send({"type": "state", "value": "asleep"})
            return ""
        self._awake_until = now + self.settings.handsfree.awake_seconds
        if wake is not None and wake.rest == "":
            self._send({"type": "state", "value": "awake"})
        return text if wake is None else wake.rest

    def _second_opinion(self, text: str, audio: list[np.ndarray], final: bool) -> Wake | None:
        """The wake phrase as the second recognizer hears this utterance's opening: asked once
        per utterance, when its opening is all there or the utterance has ended."""
        if self._opening_heard is None:
            if not self.wake.worth_asking(text):
                return None
            samples = np.concatenate(audio)
            if not final and len(samples) < self.wake.window_seconds * SAMPLE_RATE:
                return None
            self._opening_heard = self.wake.heard_in_audio(samples)
        return self.wake.heard_wake(text) if self._opening_heard else None

    def _answer(self, answer: Answer, speech_ended_at: float) -> None:
        reply, text = answer.reply, answer.reply.user_text
        session = self.live.get(self.client_id).session  # the person's memory, when known
        request = TurnRequest(
            text=text,
            session=session,
            history=[] if session else list(self.history),
            system_prompt=self.options.system_prompt,
            voice=self.options.voice,
            speed=self.options.speed,
        )
        written = ""  # reply text written before the answer was released
        try:
            for event in self.pipeline.run(request, answer.cancel):
                if not answer.release.is_set() and isinstance(event, ReplyText):
                    written += event.delta  # still a guess: write on, but show nothing yet
                    continue
                if isinstance(event, Speech | Done) and not answer.wait_for_release():
                    return  # a premature answer, cancelled before anyone heard it
                if self._reply is not reply and answer.release.is_set():
                    self._reply = reply  # released: from now on the page sees it
                    self._add_to_chat(
                        {"role": "user", "content": text}, {"role": "assistant", "content": written}
                    )
                    self._send({"type": "state", "value": "thinking"})
                if isinstance(event, ReplyText):
                    self._extend_last_message(event.delta)
                elif isinstance(event, Speech):
                    self._speak(reply, event, speech_ended_at)
                elif isinstance(event, Done):
                    self._done(reply, event.turn)
        except VoxloopError as err:
            self._send({"type": "error", "message": str(err)})
            if self._reply is reply:
                self._extend_last_message(f"⚠️ {err}")

    def _speak(self, reply: Reply, speech: Speech, speech_ended_at: float) -> None:
        if reply.first_audio_at is None:
            reply.first_audio_at = time.monotonic()
            self.latencies_ms.append((reply.first_audio_at - speech_ended_at) * 1000)
            self.live.start_reply(self.client_id, reply.turn, speech.chunk.sample_rate)
            self._send(
                {"type": "state", "value": "speaking", "latency_ms": round(self.latencies_ms[-1])}
            )
        self.live.send_audio(self.client_id, reply.turn, speech.chunk)
        reply.pieces.append((speech.text, speech.chunk.seconds))

    def _done(self, reply: Reply, turn: Turn) -> None:
        with self._lock:
            reply.stored_id = turn.stored_id
            if reply.heard_text is not None:  # interrupted while the reply was being written
                self._revise_stored(reply)
            elif not turn.cancelled:
                self.history += _exchange(reply.user_text, turn.reply)
                reply.remembered = True

    def _revise_stored(self, reply: Reply) -> None:
        memory = self.pipeline.memory
        if memory is not None and reply.stored_id is not None and reply.heard_text is not None:
            memory.revise_reply(reply.stored_id, reply.heard_text)

    def _keep_heard_part(self, reply: Reply, now: float) -> None:
        """After a barge-in, the history keeps only what the person heard of the answer."""
        heard = (reply.heard(now) + " …").strip()
        with self._lock:
            if reply.remembered:
                self.history = self.history[:-2]
            self.history += _exchange(reply.user_text, heard)
            reply.remembered = True
            reply.heard_text = heard
            self._revise_stored(reply)
        self._add_to_chat({"role": "assistant", "content": heard}, replace_last=True)

    def _add_to_chat(self, *messages: dict[str, str], replace_last: bool = False) -> None:
        with self._lock:
            self.chat = [*self.chat[: -1 if replace_last else None], *messages]
            self.version += 1

    def _extend_last_message(self, text: str) -> None:
        with self._lock:
            last = self.chat[-1]
            self.chat = [*self.chat[:-1], {"role": last["role"], "content": last["content"] + text}]
            self.version += 1

    def _send(self, message: dict[str, Any]) -> None:
        self.live.send_json(self.client_id, message)


def _exchange(user_text: str, reply: str) -> list[Message]:
    return [Message(role="user", content=user_text), Message(role="assistant", content=reply)]


def is_echo(text: str, last_reply: str, overlap: float) -> bool:
    """Whether `text` is mostly the words of `last_reply` (our voice, back through the mic)."""
    said, heard = set(normalize(last_reply)), normalize(text)
    if len(heard) < 2 or not said:
        return False
    return sum(word in said for word in heard) / len(heard) >= overlap
