"""Two engines together, for final transcripts that neither gets right alone.

'checked': Moonshine (fast) first; only when its transcript has a word that is not in Whisper's
vocabulary, which is how Moonshine's mishearings look (non-words), Whisper decodes the
utterance too and the transcript with fewer unknown words is kept (Whisper's on a tie).
'pick': both engines on every utterance; Whisper's transcript is kept unless its mean token
log-probability says it is unsure, then the one with fewer unknown words.
Live partials come from Moonshine's streaming decoder in both.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np

from voxloop import assets
from voxloop.config import STTSettings
from voxloop.stt import PartialTranscriber, Transcriber, Transcript, engines
from voxloop.stt.whisper import WhisperTranscriber

FAST, CAREFUL = "moonshine", "whisper"
WORD_START = "\u0120"  # how GPT-2's byte-level vocabulary (Whisper's) marks a word's start
# Below this mean token log-probability Whisper tiny.en is unsure: chosen on the tuning split
# of `voxloop bench stt` (swept -0.2 to -1.5; -0.4 and -0.5 did best, -0.5 asks Moonshine
# less often). A quarter of the utterances fall below it.
UNSURE_LOGPROB = -0.5


class CheckedTranscriber:
    """Moonshine, checked against a vocabulary; Whisper where Moonshine made up a word."""

    def __init__(self, settings: STTSettings, cache_dir: Path) -> None:
        self.fast = engines.get(FAST, settings, cache_dir)
        careful = engines.get(CAREFUL, settings, cache_dir)
        assert isinstance(careful, WhisperTranscriber)
        self.careful = careful
        self.vocabulary = vocabulary(assets.whisper_dir(settings.whisper_model, cache_dir))

    def transcribe(self, audio: np.ndarray, prompt: str | None = None) -> Transcript:
        """Moonshine's transcript, or Whisper's where it has fewer unknown words."""
        fast = self.fast.transcribe(audio)
        if not needs_second_opinion(fast.text, self.vocabulary):
            return fast
        careful = self.careful.transcribe(audio, prompt=prompt)
        return careful if prefer_careful(fast.text, careful, self.vocabulary) else fast

    def stream(self) -> PartialTranscriber:
        """Live partials from Moonshine's streaming decoder."""
        return self.fast.stream()


class PickTranscriber(CheckedTranscriber):
    """Both engines on every utterance; Whisper's transcript unless Whisper is unsure."""

    def transcribe(self, audio: np.ndarray, prompt: str | None = None) -> Transcript:
        """Whisper's transcript when it is sure, else the one with fewer unknown words."""
        careful = self.careful.transcribe(audio, prompt=prompt)
        if is_sure(careful):
            return careful
        fast = self.fast.transcribe(audio)
        return careful if prefer_careful(fast.text, careful, self.vocabulary) else fast


def needs_second_opinion(fast_text: str, known: frozenset[str]) -> bool:
    """'checked': whether Moonshine's transcript has a word outside the vocabulary."""
    return unknown_words(fast_text, known) > 0


def is_sure(careful: Transcript) -> bool:
    """'pick': whether Whisper's own confidence is high enough to keep its transcript."""
    return careful.logprob is not None and careful.logprob >= UNSURE_LOGPROB


def prefer_careful(fast_text: str, careful: Transcript, known: frozenset[str]) -> bool:
    """Whisper's transcript over Moonshine's unless it has more unknown words."""
    return unknown_words(careful.text, known) <= unknown_words(fast_text, known)


@cache
def vocabulary(model_dir: Path) -> frozenset[str]:
    """The whole words (lower case) in a Whisper model's tokenizer vocabulary."""
    with (model_dir / "tokenizer.json").open(encoding="utf-8") as file:
        tokens = json.load(file)["model"]["vocab"]
    return frozenset(
        token[1:].lower() for token in tokens if token.startswith(WORD_START) and len(token) > 1
    )


def unknown_words(text: str, known: frozenset[str]) -> int:
    """How many words of `text` are not in `known` (a contraction counts by its stem)."""
    words = re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())
    return sum(word.split("'")[0] not in known for word in words)


@engines.register("checked")
def _build_checked(settings: STTSettings, cache_dir: Path) -> Transcriber:
    return CheckedTranscriber(settings, cache_dir)


@engines.register("pick")
def _build_pick(settings: STTSettings, cache_dir: Path) -> Transcriber:
    return PickTranscriber(settings, cache_dir)
