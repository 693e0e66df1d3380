"""The wake phrase as a gate: asleep until the phrase is heard, then awake for a while."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from voxloop.audio import SAMPLE_RATE
from voxloop.wake import Wake, WakeMatcher


@dataclass(frozen=True)
class Admitted:
    """What the gate lets through of an utterance ('' for nothing), and the state to show."""

    text: str
    state: str | None = None  # "asleep" or "awake" when the person should see it


class WakeGate:
    """Lets an utterance through only while awake, or when it opens with the wake phrase."""

    def __init__(self, matcher: WakeMatcher, awake_seconds: float) -> None:
        self.matcher = matcher
        self.awake_seconds = awake_seconds
        self._awake_until = -math.inf
        self._opening_heard: bool | None = None  # the second opinion on this utterance

    def new_utterance(self) -> None:
        """Forget the second opinion: a new utterance starts."""
        self._opening_heard = None

    def fall_asleep(self) -> None:
        """Close the awake window now."""
        self._awake_until = -math.inf

    def admit(self, text: str, audio: list[np.ndarray], final: bool, now: float) -> Admitted:
        """The words to answer of `text` (the wake phrase taken off), at time `now`."""
        asleep = now > self._awake_until
        wake = self.matcher.in_transcript(text)
        # Awake, a misheard phrase is only a few extra words: no second opinion is worth its
        # time then, unless it already heard the phrase open this utterance.
        if wake is None and (asleep or self._opening_heard):
            wake = self._second_opinion(text, audio, final)
        if wake is None and asleep:
            return Admitted("", "asleep")
        self._awake_until = now + self.awake_seconds
        if wake is None:
            return Admitted(text)
        return Admitted(wake.rest, "awake" if wake.rest == "" else None)

    def _second_opinion(self, text: str, audio: list[np.ndarray], final: bool) -> Wake | None:
        """The wake phrase as the second recognizer hears this utterance's opening: asked once
        per utterance, when its opening is all there or the utterance has ended."""
        if self._opening_heard is None:
            if not self.matcher.worth_asking(text):
                return None
            samples = np.concatenate(audio)
            if not final and len(samples) < self.matcher.window_seconds * SAMPLE_RATE:
                return None
            self._opening_heard = self.matcher.heard_in_audio(samples)
        return self.matcher.heard_wake(text) if self._opening_heard else None
