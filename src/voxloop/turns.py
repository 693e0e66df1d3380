"""A turn's data types: what a turn starts from (`TurnRequest`), what it yields, what it was."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxloop.audio import AudioChunk
from voxloop.llm import Message
from voxloop.prompts import Utterance

if TYPE_CHECKING:  # longform pulls in the speech engines; these types only name its records
    from voxloop import longform
    from voxloop.stt import Readings, Transcript


class Release(threading.Event):
    """Set when a turn prepared ahead may be heard (the person has finished); it keeps when."""

    at: float | None = None  # time.perf_counter() when the person began waiting for the turn

    def set(self, at: float | None = None) -> None:
        """Release the turn now; `at`: when the person began waiting (default now)."""
        if self.at is None:
            self.at = time.perf_counter() if at is None else at
        super().set()


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
    kind: Utterance = Utterance.QUESTION
    stored_id: int | None = None  # the turn's id in memory, once stored
    recording: longform.LongRecording | None = None  # a long recording, summarized
    failed: str | None = None  # why the model could not answer (the reply is an apology)
    skill: str | None = None  # the skill that answered instead of the model, if one did

    @property
    def outcome(self) -> str:
        """How the turn ended: 'answered', 'cancelled' or 'apologized'."""
        if self.cancelled:
            return "cancelled"
        return "apologized" if self.failed else "answered"

    @property
    def heard_reply(self) -> str:
        """The reply as the person heard it: all of it, or the part spoken before a stop."""
        return " ".join(self.spoken) if self.cancelled else self.reply


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
    """What one turn starts from: audio to transcribe, or text that skips transcription.

    With a `session` (and a pipeline that has a memory), the history and notes come from
    that session's memory, and the finished turn is stored there.
    """

    audio: np.ndarray | None = None
    text: str | None = None
    language: str | None = None  # what `text` was spoken in, when a transcript says
    history: list[Message] = field(default_factory=list)
    system_prompt: str | None = None
    notes: list[str] = field(default_factory=list)  # added to the system prompt
    session: str | None = None
    recording: str | Path | None = None  # a long recording to transcribe and summarize
    progress: longform.Progress | None = None  # told how a long recording is coming along
    voice: str | None = None
    speed: float | None = None
    timezone: str | None = None  # the person's (IANA name); default: settings.skills.timezone
    speak: bool = True  # False: the reply is only written (a door that speaks it itself)
    # A turn prepared before the person has finished (in a pause): it is written, but nothing
    # is said, carried out (a skill) or stored until this is set; cancelled first, it ends
    # unheard. Its stage timings count from the release: what was done ahead took no time.
    release: Release | None = None
    # Other readings of the audio that `text` was heard from (`Transcript.readings`): a skill
    # may take one where it does not take `text` as heard.
    readings: Readings | None = None

    def hear(self, transcript: Transcript) -> None:
        """Answer what `transcript` heard: its words, their language, their other readings."""
        self.text, self.language = transcript.text, transcript.language
        self.readings = transcript.readings
