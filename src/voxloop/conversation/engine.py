"""The conversation engine: microphone frames in, events out, whatever carries them.

It runs its own listening thread (turn detection, live transcript) and each answer in a thread
of its own, so listening goes on while voxloop talks: that is what barge-in needs. An answer is
prepared during a pause and spoken only if the turn really ended; speaking over an answer stops
it and keeps only the part that was heard; voxloop's own voice coming back is ignored; in wake
mode only what follows the wake phrase is answered.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voxloop.audio import MS_PER_SECOND, from_int16
from voxloop.config import VADSettings
from voxloop.conversation.echo import is_echo
from voxloop.conversation.events import (
    Event,
    Failed,
    ReplyAudio,
    ReplyDone,
    ReplyInterrupted,
    ReplyStarted,
    ReplyWritten,
    SpeechStopped,
    StateChanged,
    TranscriptUpdated,
)
from voxloop.conversation.playback import Reply
from voxloop.conversation.prepared import Answer
from voxloop.conversation.primer import Primer
from voxloop.conversation.wake_gate import WakeGate
from voxloop.errors import NoSpeech, VoxloopError
from voxloop.llm import Message
from voxloop.pipeline import Pipeline
from voxloop.stt import PartialTranscriber, Transcript, get_transcriber
from voxloop.turn_end import judge_of, read_ahead
from voxloop.turns import Done, Heard, Release, ReplyText, Speech, Turn, TurnRequest
from voxloop.vad import FRAME_MS, FRAME_SAMPLES, TurnDetector, TurnEvent
from voxloop.wake import WakeMatcher

log = logging.getLogger("voxloop.conversation")
UNEXPECTED_FAILURE = "Something went wrong while answering; please say it again."

TurnStarter = Callable[[], tuple[int, threading.Event]]  # -> (turn number, its cancel flag)


@dataclass(frozen=True)
class Options:
    """What the person chose when the conversation started."""

    voice: str | None = None
    speed: float | None = None
    system_prompt: str | None = None
    wake: bool = False


def own_turns() -> TurnStarter:
    """Numbered turns whose cancel flags nobody else shares."""
    numbers = itertools.count(1)
    return lambda: (next(numbers), threading.Event())


class Conversation:
    """One person's spoken conversation: fed microphone audio, it tells `emit` what happens."""

    def __init__(
        self,
        pipeline: Pipeline,
        options: Options,
        emit: Callable[[Event], None],
        session: Callable[[], str | None] = lambda: None,
        begin_turn: TurnStarter | None = None,
        vad: VADSettings | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self.options = options
        self.emit = emit
        self.session = session  # the person's memory, when known (asked at each answer)
        self.begin_turn = begin_turn or own_turns()
        self.vad = vad or self.settings.vad  # a door may set its own turn detection
        judge = judge_of(self.settings, self.vad, self._words_so_far)
        self.detector = TurnDetector(self.vad, judge)
        self.gate = WakeGate(WakeMatcher(self.settings), self.settings.handsfree.awake_seconds)
        self.history: list[Message] = []  # used when there is no session memory
        self.latencies_ms: list[float] = []  # end of speech -> first audio, per answer
        self._frames: queue.Queue[np.ndarray | None] = queue.Queue()
        self._partial: PartialTranscriber | None = None
        self._primer: Primer | None = None  # the prompt evaluated while they speak
        self._fed_frames = 0
        self._heard: Transcript | None = None  # the last whole transcript (its readings)
        self._caught_up_to: int | None = None  # the pause whose words the transcript has
        self._reply: Reply | None = None
        self._reply_thread: threading.Thread | None = None
        self._cancel: threading.Event | None = None  # the latest answer's
        self._speculation: Answer | None = None
        self._voice_until = 0.0  # time.monotonic() our audio sent so far should end playing
        self._over_our_voice = False  # this utterance began while our voice could be heard
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._listen, name="voxloop-listen", daemon=True)
        self._thread.start()

    # ---- what a door calls

    def feed(self, samples: np.ndarray) -> None:
        """Queue microphone audio (float32 mono at 16 kHz); returns at once."""
        self._frames.put(samples)

    def feed_pcm16(self, pcm16: bytes) -> None:
        """Queue microphone audio as 16-bit little-endian PCM, mono, 16 kHz."""
        self.feed(from_int16(pcm16))

    def busy(self) -> bool:
        """Whether an answer is being written or (by our estimate) still being played."""
        reply = self._reply
        if reply is None or reply.stopped:
            return False
        return self.answering() or reply.playing(time.monotonic())

    def answering(self) -> bool:
        """Whether an answer is being prepared, written or sent (its thread still runs)."""
        return self._reply_thread is not None and self._reply_thread.is_alive()

    def announce(self, text: str, seconds: float) -> None:
        """Keep the words of an alert voxloop says on its own (`seconds` of audio, sent now):
        the microphone will hear them."""
        with self._lock:
            self.history.append(Message(role="assistant", content=text))
        self._played(seconds)

    def respond(self, text: str) -> None:
        """Answer `text` now, as if the person had just said it (typed, or heard by a door)."""
        self._reply_thread = self._start_answer(text, time.monotonic()).thread

    def cancel(self) -> None:
        """Stop the answer being written and spoken (what was said of it stays as it is)."""
        if self._cancel is not None:
            self._cancel.set()
        if self._reply is not None:
            self._reply.stopped = True
        self._voice_until = min(self._voice_until, time.monotonic())  # the door stops playing

    def truncate(self, turn: int, seconds_heard: float) -> str | None:
        """The door says the person heard only `seconds_heard` of answer `turn`'s audio: keep
        just that part of it. The words kept, or None when that answer is not the last one."""
        reply = self._reply
        if reply is None or reply.turn != turn:
            return None
        reply.stopped = True
        return self._keep_heard(reply, reply.heard_within(seconds_heard))

    def close(self, wait_seconds: float | None = None) -> None:
        """End the conversation: listen to what was fed, then stop; stop any answer now."""
        self._frames.put(None)
        if self._cancel is not None:
            self._cancel.set()
        if wait_seconds is not None:
            self._thread.join(wait_seconds)

    def listening(self) -> bool:
        """Whether the listening thread still runs (it ends after `close`)."""
        return self._thread.is_alive()

    # ---- listening

    def _listen(self) -> None:
        if self.options.wake:
            self.gate.matcher.prepare()
        while (samples := self._frames.get()) is not None:
            try:
                for event in self.detector.feed(samples):
                    self._on_turn_event(event)
                self._update_partial()
            except Exception:  # keep listening whatever one utterance did
                log.exception("hands-free listening failed")

    def _on_turn_event(self, event: TurnEvent) -> None:
        if event.kind == "start":
            self._speech_started()
        elif event.kind == "pause":  # maybe the end: prepare the answer, but keep it quiet
            if event.audio is not None:
                self._speculate(event.audio, time.monotonic() - event.silence_ms / MS_PER_SECOND)
        elif event.kind == "resume" and self._speculation is not None:
            self._speculation.cancel.set()  # they went on speaking: that answer was premature
            self._speculation = None
        elif event.kind == "end" and event.audio is not None:
            self._speech_ended(event.audio, time.monotonic() - event.silence_ms / MS_PER_SECOND)

    def _speech_started(self) -> None:
        echo_seconds = self.settings.handsfree.echo_seconds
        self._over_our_voice = time.monotonic() <= self._voice_until + echo_seconds
        reply = self._reply
        if reply is not None and self.busy():
            self._interrupt(reply, time.monotonic())
        engine = self.settings.stt.partial_engine
        self._partial = get_transcriber(self.settings, engine).stream()
        self._stop_priming()
        # Not in wake mode: the words heard start with the wake phrase, which the turn drops.
        if self.settings.handsfree.evaluate_ahead and not self.options.wake:
            self._primer = Primer(self._prime)
        self._fed_frames, self._caught_up_to = 0, None
        self.gate.new_utterance()
        self.emit(StateChanged("hearing"))

    def _update_partial(self) -> None:
        frames, handsfree = self.detector.utterance, self.settings.handsfree
        # While an answer is being prepared the transcript is known: leave the CPU to it.
        if self._partial is None or not self.detector.speaking or self._speculation is not None:
            return
        if len(frames) == self._fed_frames:
            return
        catch_up = 0 < handsfree.catch_up_ms <= self.detector.silence_ms
        catch_up = catch_up and not self._caught_up() and self._answers_live()
        new_ms = (len(frames) - self._fed_frames) * FRAME_MS
        if not catch_up and new_ms < handsfree.partial_every_ms:
            return
        text = self._partial.add(np.concatenate(frames[self._fed_frames :]), up_to_date=catch_up)
        self._fed_frames = len(frames)
        if catch_up:
            self._caught_up_to = self._pause_start()
        self.emit(TranscriptUpdated(text))
        read_ahead(self.settings, self.vad, text)
        if self._primer is not None:
            self._primer.offer(text.strip())

    def _pause_start(self) -> int | None:
        """Where the silence the person is in began (a frame of the utterance), or None."""
        silent_frames = self.detector.silence_ms // FRAME_MS
        return len(self.detector.utterance) - silent_frames if silent_frames else None

    def _caught_up(self) -> bool:
        """Whether the live transcript has every word before the pause the person is in."""
        pause = self._pause_start()
        return pause is not None and pause == self._caught_up_to

    def _prime(self, text: str) -> None:
        self.pipeline.prime_turn(self._request(text), text)

    def _stop_priming(self) -> None:
        """The answer needs the model now: evaluate no more partial prompts."""
        primer, self._primer = self._primer, None
        if primer is not None:
            primer.end()

    def _speculate(self, utterance: np.ndarray, speech_ended_at: float) -> None:
        """Start answering what was said so far; the audio is held until the turn ends."""
        if self._partial is None:
            return
        self._stop_priming()
        text = self._final_text(self._partial, utterance, done=False)
        if answer := self._what_to_answer(text, [utterance], final=False):
            self._speculation = self._start_answer(answer, speech_ended_at, held=True)

    def _speech_ended(self, utterance: np.ndarray, speech_ended_at: float) -> None:
        partial, self._partial = self._partial, None
        speculation, self._speculation = self._speculation, None
        self._stop_priming()
        if partial is None:
            return
        self.emit(SpeechStopped())
        if speculation is not None and not speculation.cancel.is_set():
            self._reply_thread = speculation.thread
            # The turn really ended: let the prepared answer speak. The person has waited since
            # their last word, so its stage timings count from there (that is, as they were).
            waited = time.monotonic() - speech_ended_at
            speculation.release.set(at=time.perf_counter() - waited)
            partial.close()  # its text is known; decoding again would slow the answer
            self.emit(TranscriptUpdated(speculation.reply.user_text, final=True))
            return
        text = self._final_text(partial, utterance, done=True)
        self.emit(TranscriptUpdated(text, final=True))
        if answer := self._what_to_answer(text, [utterance]):
            self._reply_thread = self._start_answer(answer, speech_ended_at).thread
        else:
            self.emit(StateChanged("listening"))

    def _final_text(self, partial: PartialTranscriber, utterance: np.ndarray, done: bool) -> str:
        """What the person said: the live transcript with the last bit of speech, or, with
        `handsfree.final_transcript = "final"` and another final engine (`stt.engine`), that
        engine's on the whole utterance. `done`: the utterance has ended (else this is a
        pause, maybe the end)."""
        if self._answers_live():
            rest = utterance[self._fed_frames * FRAME_SAMPLES :]
            # Every word: finish() decodes all of it anyway, and a catch-up in this pause did.
            text = partial.add(rest, up_to_date=not (done or self._caught_up()))
            self._fed_frames = len(utterance) // FRAME_SAMPLES
            if not done:
                return text.strip()
            self._heard = partial.finish()
            return self._heard.text.strip()
        if done:
            partial.close()
        try:
            self._heard = self.pipeline.hear(utterance, self._request(""))
        except NoSpeech:
            return ""
        return self._heard.text.strip()

    def _answers_live(self) -> bool:
        """Whether turns answer the live transcript (else stt.engine's, on the utterance)."""
        stt, handsfree = self.settings.stt, self.settings.handsfree
        return handsfree.final_transcript == "live" or stt.engine == stt.partial_engine

    def _words_so_far(self, utterance: np.ndarray) -> str:
        """What the person has said so far (for the end-of-turn judge, during a pause)."""
        if self._speculation is not None:  # the answer prepared in this pause knows them
            return self._speculation.reply.user_text
        if self._partial is None:
            return ""
        return self._final_text(self._partial, utterance, done=False)

    def _what_to_answer(self, text: str, audio: list[np.ndarray], final: bool = True) -> str:
        """The text to answer ('' for nothing: no words, our own echo, or asleep); `final`
        once the utterance has ended."""
        if not text or self._echo(text):
            return ""
        if not self.options.wake:
            return text
        admitted = self.gate.admit(text, audio, final, time.monotonic())
        if admitted.state is not None:
            self.emit(StateChanged(admitted.state))
        return admitted.text

    def _echo(self, text: str) -> bool:
        """Whether `text` is our own last words, heard back while they were being played."""
        if not self._over_our_voice or not self.history:
            return False
        return is_echo(text, self.history[-1]["content"], self.settings.handsfree.echo_overlap)

    # ---- answering

    def _start_answer(self, text: str, speech_ended_at: float, held: bool = False) -> Answer:
        if self._cancel is not None:
            self._cancel.set()  # one answer at a time: a newer turn replaces an older one
        turn_number, cancel = self.begin_turn()
        self._cancel = cancel
        answer = Answer(Reply(turn_number, text), cancel, Release())
        if not held:
            answer.release.set()
        answer.thread = threading.Thread(
            target=self._answer, args=(answer, speech_ended_at), name="voxloop-reply", daemon=True
        )
        answer.thread.start()
        return answer

    def _answer(self, answer: Answer, speech_ended_at: float) -> None:
        reply = answer.reply
        request = self._request(reply.user_text)
        if not answer.release.is_set():  # prepared in a pause: it may act only once released
            request.release = answer.release
        written = ""  # reply text written before the answer was released
        try:
            for event in self.pipeline.run(request, answer.cancel):
                if isinstance(event, Heard):  # a skill may have taken another reading
                    reply.user_text = event.text
                if not answer.release.is_set() and isinstance(event, ReplyText):
                    written += event.delta  # still a guess: write on, but show nothing yet
                    continue
                held = not answer.release.is_set()
                if held and isinstance(event, Speech | Done) and not answer.wait_for_release():
                    return  # a premature answer, cancelled before anyone heard it
                if self._reply is not reply and answer.release.is_set():
                    self._reply = reply  # released: from now on the door sees it
                    self.emit(ReplyStarted(reply.turn, reply.user_text, written))
                    self.emit(StateChanged("thinking"))
                if isinstance(event, ReplyText):
                    self.emit(ReplyWritten(reply.turn, event.delta))
                elif isinstance(event, Speech):
                    self._speak(reply, event, speech_ended_at)
                elif isinstance(event, Done):
                    self._done(reply, event.turn)
        except VoxloopError as err:
            self.emit(Failed(str(err), shown=self._reply is reply))
        except Exception:  # a bug: the person hears of it, the log keeps the trace
            log.exception("hands-free answer failed")
            self.emit(Failed(UNEXPECTED_FAILURE, shown=self._reply is reply))

    def _request(self, text: str) -> TurnRequest:
        """The turn that answers `text` in this conversation."""
        session, heard = self.session(), self._heard
        return TurnRequest(
            text=text,
            session=session,
            history=[] if session else list(self.history),
            system_prompt=self.options.system_prompt,
            voice=self.options.voice,
            speed=self.options.speed,
            readings=heard.readings if heard is not None and heard.text.strip() == text else None,
        )

    def _speak(self, reply: Reply, speech: Speech, speech_ended_at: float) -> None:
        latency_ms = None
        if reply.first_audio_at is None:
            reply.first_audio_at = time.monotonic()
            latency_ms = (reply.first_audio_at - speech_ended_at) * MS_PER_SECOND
            self.latencies_ms.append(latency_ms)
        self.emit(ReplyAudio(reply.turn, speech.chunk, speech.text, latency_ms))
        reply.pieces.append((speech.text, speech.chunk.seconds))
        self._played(speech.chunk.seconds)

    def _played(self, seconds: float) -> None:
        """`seconds` of our audio were just sent: a door plays it after what it has queued."""
        self._voice_until = max(self._voice_until, time.monotonic()) + seconds

    def _done(self, reply: Reply, turn: Turn) -> None:
        with self._lock:
            reply.stored_id = turn.stored_id
            if reply.heard_text is not None:  # interrupted while the reply was being written
                self._revise_stored(reply)
            elif not turn.cancelled:
                self.history += _exchange(reply.user_text, turn.reply)
                reply.remembered = True
        self.emit(ReplyDone(reply.turn, turn))

    # ---- barge-in

    def _interrupt(self, reply: Reply, now: float) -> None:
        """The person spoke over the answer: stop it, keep only what they heard of it."""
        self.cancel()  # generation stops now
        heard = self._keep_heard(reply, reply.heard(now))
        self.emit(ReplyInterrupted(reply.turn, heard))

    def _keep_heard(self, reply: Reply, heard_words: str) -> str:
        """The history (and the person's memory) keep only the heard words of `reply`."""
        heard = (heard_words + " …").strip()
        with self._lock:
            if reply.remembered:
                self.history = self.history[:-2]
            self.history += _exchange(reply.user_text, heard)
            reply.remembered = True
            reply.heard_text = heard
            self._revise_stored(reply)
        return heard

    def _revise_stored(self, reply: Reply) -> None:
        memory = self.pipeline.memory
        if memory is not None and reply.stored_id is not None and reply.heard_text is not None:
            memory.revise_reply(reply.stored_id, reply.heard_text)


def _exchange(user_text: str, reply: str) -> list[Message]:
    return [Message(role="user", content=user_text), Message(role="assistant", content=reply)]
