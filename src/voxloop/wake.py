"""The wake phrase: does an utterance open with it, and what does the person ask after it.

A live transcript often mishears a wake phrase ("Hey computer" comes back as "They computer",
"Fake computer", "Thank you, Peter"), so exact words are too brittle. Two checks, cheapest first:

1. The transcript's opening words are compared with the phrase by their sounds: both are turned
   into phonemes by espeak-ng, and an opening within `wake_tolerance` x the phrase's sounds of
   it wakes. An edit that touches a vowel counts double, so "They computer" is 1 from "hey
   computer" (of 10 sounds) and wakes, while "her computer" is 2 and "a computer" 3.
2. While asleep, when the transcript's opening is not the phrase but not far from it either
   (within `wake_ask_within`: "Thank you, Peter" is 0.9 of the phrase's sounds away, most
   sentences more), Whisper (tiny.en by default) is asked how likely the utterance's first
   `wake_window_seconds` open with the phrase: the probability of the phrase's own tokens given
   that audio, forced, not a free transcript (where a robotic "Hey" comes back as "A"). At
   `wake_confidence` or more it wakes, and the question is the transcript's words after the
   opening that sounds most like the phrase.

The phrase must open the utterance: "computer" in the middle of a sentence never wakes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxloop.audio import SAMPLE_RATE
from voxloop.config import Settings
from voxloop.errors import ConfigError
from voxloop.sounds import edit_distance, sounds
from voxloop.text import words

log = logging.getLogger("voxloop.wake")

# Words beyond the phrase's own that its opening may span: a misheard phrase can come back
# as more words than it has ("hey computer" as "thank you peter").
EXTRA_OPENING_WORDS = 2
_TINY = 1e-9  # the least probability counted: log(0) is no number


@dataclass(frozen=True)
class Opening:
    """How closely the first `words` words of a transcript sound like the phrase."""

    words: int  # how many words of the transcript the phrase spans
    distance: int  # edits between their sounds and the phrase's (weighted: edit_distance)
    phrase_sounds: int  # how many sounds the phrase has

    def within(self, tolerance: float) -> bool:
        """Whether the opening is near enough the phrase: at most tolerance x its sounds."""
        return self.distance <= round(tolerance * self.phrase_sounds)


@dataclass(frozen=True)
class Wake:
    """A transcript that opens with the wake phrase: what follows it, and who heard it."""

    rest: str  # the words after the phrase ('' for the bare phrase)
    heard_by: str  # "transcript" or the second recognizer's engine name


class WakeMatcher:
    """Finds the wake phrase at the opening of an utterance, from its transcript and audio."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        hands_free = settings.handsfree
        self.phrase = words(hands_free.wake_phrase)
        self.tolerance = hands_free.wake_tolerance
        self.window_seconds = hands_free.wake_window_seconds
        self.second_opinion = hands_free.wake_second_opinion
        self.confidence = hands_free.wake_confidence
        self.ask_within = hands_free.wake_ask_within

    def in_transcript(self, text: str) -> Wake | None:
        """The wake, when `text` opens with (something that sounds like) the phrase."""
        rest = rest_after(text, self.phrase, self.tolerance)
        return None if rest is None else Wake(rest, "transcript")

    def in_utterance(self, text: str, audio: np.ndarray) -> Wake | None:
        """The wake from the transcript, else from the second recognizer on the audio's opening."""
        if wake := self.in_transcript(text):
            return wake
        if not self.worth_asking(text) or not self.heard_in_audio(audio):
            return None
        return self.heard_wake(text)

    def heard_wake(self, text: str) -> Wake:
        """The wake once the second recognizer heard the phrase: the question is what follows
        the opening of `text` that sounds most like the phrase."""
        heard = words(text)
        opening = best_opening(heard, self.phrase)
        return Wake(" ".join(heard[opening.words if opening else 0 :]), self.second_opinion)

    def worth_asking(self, text: str) -> bool:
        """Whether the transcript's opening is near enough the phrase (within `ask_within` x its
        sounds) for a second opinion: most other speech is further, and is not worth the CPU."""
        opening = best_opening(words(text), self.phrase)
        return bool(self.second_opinion) and opening is not None and opening.within(self.ask_within)

    def heard_in_audio(self, audio: np.ndarray) -> bool:
        """Whether the second recognizer finds the phrase opening `audio` likely enough."""
        return self.opening_probability(audio) >= self.confidence

    def opening_probability(self, audio: np.ndarray) -> float:
        """How likely Whisper finds it that `audio` (16 kHz mono float32) opens with the phrase:
        the geometric mean of the probabilities of the phrase's tokens, each given the audio
        and the tokens before it, for the likeliest way of writing the phrase."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer

        model = self._whisper()
        features = model.feature_extractor(audio[: round(self.window_seconds * SAMPLE_RATE)])
        encoded = model.encode(pad_or_trim(features))
        multilingual = model.model.is_multilingual
        tokenizer = Tokenizer(model.hf_tokenizer, multilingual, "transcribe", "en")
        best = 0.0
        for written in _ways_to_write(self.phrase):
            tokens = tokenizer.encode(" " + written)
            result = model.model.align(
                encoded, tokenizer.sot_sequence, [tokens], features.shape[-1]
            )
            probabilities = np.maximum(np.asarray(result[0].text_token_probs), _TINY)
            best = max(best, float(np.exp(np.mean(np.log(probabilities)))))
        log.debug("the wake phrase's probability at the opening: %.3f", best)
        return best

    def prepare(self) -> None:
        """Load the second recognizer now, so the first wake is not slowed by loading it."""
        if self.second_opinion:
            self._whisper()

    def _whisper(self) -> Any:
        """The second recognizer's faster-whisper model."""
        from voxloop.stt import get_transcriber

        model = getattr(get_transcriber(self.settings, self.second_opinion), "model", None)
        if model is None or not hasattr(model, "feature_extractor"):
            raise ConfigError(
                f"handsfree.wake_second_opinion must name a Whisper engine ('whisper' or ''), "
                f"not '{self.second_opinion}'."
            )
        return model


def _ways_to_write(phrase: list[str]) -> list[str]:
    """The phrase as a transcript may begin with it: "Hey computer", "Hey, computer", ..."""
    plain = " ".join(phrase)
    ways = [plain.capitalize(), plain]
    if len(phrase) > 1:
        ways.append(f"{phrase[0].capitalize()}, {' '.join(phrase[1:])}")
    return ways


def rest_after(text: str, phrase: str | list[str], tolerance: float) -> str | None:
    """The words after `phrase` when `text` opens with words that sound like it, at most
    `tolerance` x its sounds away (None when it does not)."""
    heard = words(text)
    opening = best_opening(heard, words(phrase) if isinstance(phrase, str) else phrase)
    if opening is None or not opening.within(tolerance):
        return None
    return " ".join(heard[opening.words :])


def best_opening(words: list[str], phrase: list[str]) -> Opening | None:
    """The opening of `words` (1 to len(phrase) + EXTRA_OPENING_WORDS words) that sounds most
    like `phrase`; None when either is empty."""
    if not words or not phrase:
        return None
    longest = min(len(words), len(phrase) + EXTRA_OPENING_WORDS)
    target = sounds(" ".join(phrase))
    openings = [
        Opening(count, edit_distance(heard, target), len(target))
        for count, heard in enumerate(
            (sounds(" ".join(words[:count])) for count in range(1, longest + 1)), start=1
        )
    ]
    return min(openings, key=lambda o: (o.distance, o.words))
