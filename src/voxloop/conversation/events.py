"""What a conversation tells its door (the page's socket, the Realtime API, ...), in order."""

from __future__ import annotations

from dataclasses import dataclass

from voxloop.audio import AudioChunk
from voxloop.turns import Turn


@dataclass(frozen=True)
class StateChanged:
    """Where the conversation is: listening, hearing, asleep, awake, thinking, speaking,
    interrupted."""

    value: str


@dataclass(frozen=True)
class SpeechStopped:
    """The person stopped speaking (the turn detector's end of turn)."""


@dataclass(frozen=True)
class TranscriptUpdated:
    """What the person is saying, so far (`final` once the utterance has ended)."""

    text: str
    final: bool = False


@dataclass(frozen=True)
class ReplyStarted:
    """An answer is about to be shown and spoken: the person's words, and its text so far."""

    turn: int
    user_text: str
    written: str


@dataclass(frozen=True)
class ReplyWritten:
    """More of the answer's text."""

    turn: int
    delta: str


@dataclass(frozen=True)
class ReplyAudio:
    """A piece of the answer's speech; `latency_ms` (end of speech to this) on the first."""

    turn: int
    chunk: AudioChunk
    text: str
    latency_ms: float | None = None


@dataclass(frozen=True)
class ReplyDone:
    """The answer is written and spoken (or was cancelled: `turn.cancelled`)."""

    turn: int
    record: Turn


@dataclass(frozen=True)
class ReplyInterrupted:
    """The person spoke over the answer: it stops, and only `heard` of it is kept."""

    turn: int
    heard: str


@dataclass(frozen=True)
class Failed:
    """A turn could not be answered; the message is for the person."""

    message: str
    shown: bool = False  # whether its reply had started (the door may append the message)


Event = (
    StateChanged | SpeechStopped | TranscriptUpdated | ReplyStarted | ReplyWritten | ReplyAudio
    | ReplyDone | ReplyInterrupted | Failed
)  # fmt: skip
