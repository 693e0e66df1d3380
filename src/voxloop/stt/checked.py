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
# Below this mean token log-probability Whisper is often wrong (measured on the tuning split
# of `voxloop bench stt`); above it, it is right far more often than Moonshine.
UNSURE_LOGPROB = -0.6


class CheckedTranscriber:
    """Moonshine, checked against a vocabulary; Whisper where Moonshine made up a word."""

    def __init__(self, settings: STTSettings, cache_dir: Path) -> None:
        self.fast = engines.get(FAST, settings, cache_dir)
        careful = engines.get(CAREFUL, settings, cache_dir)
        assert isinstance(careful, WhisperTranscriber)
        self.careful = careful
        self.vocabulary = vocabulary(assets.whisper_dir(settings.whisper_model, cache_dir))

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """Moonshine's transcript, or Whisper's where it has fewer unknown words."""
        first = self.fast.transcribe(audio)
        unknown = unknown_words(first.text, self.vocabulary)
        if not unknown:
            return first
        second = self.careful.transcribe(audio)
        return second if unknown_words(second.text, self.vocabulary) <= unknown else first

    def stream(self) -> PartialTranscriber:
        """Live partials from Moonshine's streaming decoder."""
        return self.fast.stream()


class PickTranscriber(CheckedTranscriber):
    """Both engines on every utterance; Whisper's transcript unless Whisper is unsure."""

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """Whisper's transcript when it is sure, else the one with fewer unknown words."""
        careful = self.careful.transcribe(audio)
        if careful.logprob is not None and careful.logprob >= UNSURE_LOGPROB:
            return careful
        fast = self.fast.transcribe(audio)
        fast_unknown = unknown_words(fast.text, self.vocabulary)
        return careful if unknown_words(careful.text, self.vocabulary) <= fast_unknown else fast


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
