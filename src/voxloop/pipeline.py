"""One streaming turn: audio -> transcript -> LLM tokens -> speakable chunks -> audio chunks.

The language model runs in a worker thread, so it keeps generating while the first chunk is
being synthesized and played. Every stage stamps `time.perf_counter()` into the Turn.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voxloop import audio as audio_files
from voxloop import vad
from voxloop.audio import AudioChunk
from voxloop.config import Settings
from voxloop.errors import NoSpeech, VoxloopError
from voxloop.llm import ChatModel, Message, get_chat_model
from voxloop.prompts import build_messages
from voxloop.stt import Transcript, get_transcriber
from voxloop.text import SpeechChunker
from voxloop.tts import find_voice, synthesize

WORKER_JOIN_SECONDS = 2.0


@dataclass
class Turn:
    """What was said and answered in one turn, with per-stage timings in milliseconds.

    `timings_ms` keys: stt, llm_first_token, first_audio, total (all measured from the start
    of the turn; a stage that never happened is missing).
    """

    user_text: str = ""
    language: str = "en"
    reply: str = ""
    spoken: list[str] = field(default_factory=list)
    voice: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    cancelled: bool = False


@dataclass(frozen=True)
class Heard:
    """The person's words, transcribed."""

    text: str
    language: str


@dataclass(frozen=True)
class ReplyText:
    """A new piece of the reply text, as the model wrote it."""

    delta: str


@dataclass(frozen=True)
class Speech:
    """A chunk of reply audio and the speakable text it says."""

    chunk: AudioChunk
    text: str


@dataclass(frozen=True)
class Done:
    """The turn has ended (finished or cancelled)."""

    turn: Turn


Event = Heard | ReplyText | Speech | Done


@dataclass
class TurnRequest:
    """What one turn starts from: audio to transcribe, or text that skips transcription."""

    audio: np.ndarray | None = None
    text: str | None = None
    history: list[Message] = field(default_factory=list)
    system_prompt: str | None = None
    notes: list[str] = field(default_factory=list)  # added to the system prompt (memory)
    voice: str | None = None
    speed: float | None = None


class Pipeline:
    """The engines of one process, shared by every session; sessions pass their own state."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def chat_model(self) -> ChatModel:
        """The configured language model (loaded on first use)."""
        return get_chat_model(self.settings)

    def warm_up(self, voice: str | None = None, system_prompt: str | None = None) -> None:
        """Load every engine a turn needs now, so the first turn is as fast as the rest."""
        get_transcriber(self.settings)
        vad.find_speech(np.zeros(vad.FRAME_SAMPLES, np.float32), self.settings.vad)
        # One token with the persona evaluates its prompt once; llama.cpp then reuses that prefix.
        messages = build_messages(system_prompt or self.settings.system_prompt, [], "Hello.")
        for _piece in self.chat_model.stream(messages, max_tokens=1):
            pass
        for _chunk in synthesize(
            "Ready.", voice or self.settings.tts.voice, cache_dir=self.settings.cache_dir
        ):
            pass

    def load_audio(self, source: str | Path | bytes) -> np.ndarray:
        """Decode a person's file (any format) within the configured length and size limits."""
        limits = self.settings.audio
        return audio_files.load(
            source, max_seconds=limits.max_seconds, max_megabytes=limits.max_megabytes
        )

    def transcribe(self, audio: np.ndarray, engine: str | None = None) -> Transcript:
        """Final transcript of a recording; NoSpeech if nothing was said."""
        speech_ms, speech = vad.find_speech(audio, self.settings.vad)
        if speech_ms < self.settings.audio.min_speech_ms:
            raise NoSpeech("No speech heard. Please speak closer to the microphone.")
        # Silence around the words costs recognition time and invites made-up words.
        transcript = get_transcriber(self.settings, engine).transcribe(speech)
        if not transcript.text.strip():
            raise NoSpeech("No words recognized in the recording. Please try again.")
        return transcript

    def run(self, request: TurnRequest, cancel: threading.Event | None = None) -> Iterator[Event]:
        """Run one turn, yielding events as they happen; set `cancel` to stop it early."""
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        turn = Turn(voice=request.voice or self.settings.tts.voice)
        find_voice(turn.voice)  # an unknown voice fails before any work is done

        def stamp(stage: str) -> None:
            turn.timings_ms.setdefault(stage, (time.perf_counter() - started) * 1000)

        if request.text is not None:
            turn.user_text = request.text.strip()
            stamp("stt")  # nothing to transcribe: zero
        elif request.audio is not None:
            transcript = self.transcribe(request.audio)
            turn.user_text, turn.language = transcript.text, transcript.language
            stamp("stt")
        if not turn.user_text:
            raise NoSpeech("Nothing to answer: the question is empty.")
        yield Heard(turn.user_text, turn.language)

        messages = build_messages(
            request.system_prompt or self.settings.system_prompt,
            request.history,
            turn.user_text,
            request.notes,
        )
        speed = request.speed or self.settings.tts.speed
        stop = threading.Event()  # ends the language model's worker, whatever ends the turn
        synthesizing = threading.Lock()  # held while speech is synthesized; generation pauses
        try:
            for kind, text in self._generate(messages, stop, cancel, synthesizing):
                if cancel.is_set():
                    break
                if kind == "token":
                    stamp("llm_first_token")
                    turn.reply += text
                    yield ReplyText(text)
                    continue
                speech = synthesize(
                    text, turn.voice, cache_dir=self.settings.cache_dir, speed=speed
                )
                while not cancel.is_set():
                    with synthesizing:  # the model waits: two cores cannot do both at speed
                        chunk = next(speech, None)
                    if chunk is None:
                        turn.spoken.append(text)
                        break
                    stamp("first_audio")
                    yield Speech(chunk, text)
        finally:
            stop.set()
        turn.cancelled = cancel.is_set()
        stamp("total")
        yield Done(turn)

    def _generate(
        self,
        messages: list[Message],
        stop: threading.Event,
        cancel: threading.Event,
        synthesizing: threading.Lock,
    ) -> Iterator[tuple[str, str]]:
        """("token", text) as the model writes, ("speak", chunk) as chunks complete.

        The worker watches `cancel` too: a consumer that is abandoned without being closed
        (a cancelled UI task) must not leave the model generating.
        """
        items: queue.Queue[tuple[str, str] | BaseException | None] = queue.Queue()
        model = self.chat_model  # load in this thread, so a load error surfaces here

        def work() -> None:
            chunker = SpeechChunker(first_max_words=self.settings.tts.first_chunk_words)
            try:
                for token in model.stream(
                    messages, max_tokens=self.settings.llm.max_tokens, cancel=stop
                ):
                    if cancel.is_set():
                        break
                    items.put(("token", token))
                    with synthesizing:  # wait while speech is being synthesized
                        pass
                    for piece in chunker.push(token):
                        items.put(("speak", piece))
                for piece in chunker.flush():
                    items.put(("speak", piece))
            except Exception as err:  # handed to the consumer, which raises it in its thread
                items.put(err)
            finally:
                items.put(None)

        worker = threading.Thread(target=work, name="voxloop-llm", daemon=True)
        worker.start()
        try:
            while (item := items.get()) is not None:
                if isinstance(item, BaseException):
                    raise item if isinstance(item, VoxloopError) else _unexpected(item)
                yield item
        finally:
            stop.set()
            # A remote model may sit in a read until its timeout; the daemon worker ends then.
            worker.join(timeout=WORKER_JOIN_SECONDS)


def _unexpected(err: BaseException) -> VoxloopError:
    error = VoxloopError(f"The language model failed: {err}")
    error.__cause__ = err
    return error
