"""Playback accounting: which words of an answer the person has heard, by the clock."""

from __future__ import annotations

from dataclasses import dataclass, field


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
        """Whether the door is (by our estimate) still playing this reply."""
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
        return self.heard_within(now - self.first_audio_at)

    def heard_within(self, seconds_played: float) -> str:
        """The words in the first `seconds_played` of the reply's audio."""
        left, words = seconds_played, []
        for text, seconds in self.pieces:
            piece = text.split()
            share = 1.0 if left >= seconds else max(0.0, left / seconds)
            words += piece[: round(len(piece) * share)]
            left -= seconds
            if left <= 0:
                break
        return " ".join(words)
