"""Speech to text: the Transcriber protocol and the registry of engines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from voxloop.config import Settings
from voxloop.errors import ConfigError
from voxloop.registry import Registry

# Other readings of a transcript's audio, decoded expecting the words of the text given (for
# Whisper, its prompt): "Convert metres, kilometres..." makes "mattress" read as "metres".
Readings = Callable[[str], tuple[str, ...]]


@dataclass(frozen=True)
class Transcript:
    """The text heard, and the language it was spoken in (ISO 639-1 code)."""

    text: str
    language: str = "en"
    logprob: float | None = None  # mean token log-probability, where the engine gives one
    # Other readings of the same audio, best first, worked out only when asked for (Whisper:
    # its beam over the audio it encoded, expecting the words it is given); none for engines
    # without.
    readings: Readings = field(default=lambda expected: (), compare=False, repr=False)


class PartialTranscriber(Protocol):
    """A live transcription of one utterance, fed as audio arrives."""

    def add(self, audio: np.ndarray, up_to_date: bool = False) -> str:
        """Append 16 kHz float32 audio; return the best transcript so far. `up_to_date`:
        include every word of the audio added, even if that means decoding again now
        (the words at a pause are the ones answered)."""
        ...

    def finish(self) -> Transcript:
        """End the utterance and return its transcript."""
        ...

    def close(self) -> None:
        """End the utterance without a final transcript."""
        ...


class Transcriber(Protocol):
    """A speech-to-text engine working on 16 kHz mono float32 audio."""

    def transcribe(self, audio: np.ndarray, prompt: str | None = None) -> Transcript:
        """Transcribe a whole recording; `prompt` (the conversation so far) helps engines that
        take one (Whisper) hear names and recent words, and is ignored by the others."""
        ...

    def stream(self) -> PartialTranscriber:
        """Start a live transcription."""
        ...


engines: Registry[Transcriber] = Registry("speech-to-text engine")


ENGLISH_ONLY = ("moonshine",)


def check_language(language: str) -> None:
    """ConfigError unless `language` is a code Whisper knows ('en', 'fr', 'nl', ...)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # its only list of the codes

    if language not in _LANGUAGE_CODES:
        raise ConfigError(
            f"Unknown language '{language}': give an ISO 639-1 code such as 'en', 'fr' or 'nl'."
        )


def get_transcriber(
    settings: Settings, engine: str | None = None, language: str | None = None
) -> Transcriber:
    """The shared engine named `engine` (default: `settings.stt.engine`), loaded on first use.

    With a `language`, the engine transcribes in that language; English-only engines then
    give way to 'auto', which hands other languages to multilingual Whisper.
    """
    stt, name = settings.stt, engine or settings.stt.engine
    if language is not None:
        check_language(language)
        stt = stt.model_copy(update={"language": language})
        if language != "en" and name in ENGLISH_ONLY:
            name = "auto"
    return engines.get(name, stt, settings.cache_dir)


from voxloop.stt import auto, checked, moonshine, whisper  # noqa: E402,F401  (registers them)
