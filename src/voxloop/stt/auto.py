"""'auto': any language. Whisper base (multilingual) names the language; English goes to
Moonshine, the fastest and most accurate on English here, every other language to Whisper."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voxloop.config import STTSettings
from voxloop.stt import PartialTranscriber, Transcript, engines
from voxloop.stt.whisper import WhisperTranscriber

ENGLISH = "en"


class AutoTranscriber:
    """Detects the spoken language, then transcribes with the best engine for it."""

    def __init__(self, settings: STTSettings, cache_dir: Path) -> None:
        multilingual = settings.model_copy(update={"whisper_model": settings.multilingual_model})
        whisper = engines.get("whisper", multilingual, cache_dir)
        assert isinstance(whisper, WhisperTranscriber)
        self.whisper = whisper
        self.english = engines.get("moonshine", settings, cache_dir)
        self.forced = settings.language

    def transcribe(self, audio: np.ndarray, prompt: str | None = None) -> Transcript:
        """Transcribe a recording in whatever language it is spoken."""
        language = self.forced or self.whisper.detect_language(audio)
        if language == ENGLISH:
            return self.english.transcribe(audio, prompt)
        return self.whisper.transcribe(audio, language=language, prompt=prompt)

    def stream(self) -> PartialTranscriber:
        """Live partial transcripts (English: Moonshine's streaming decoder)."""
        return self.english.stream()


@engines.register("auto")
def _build(settings: STTSettings, cache_dir: Path) -> AutoTranscriber:
    return AutoTranscriber(settings, cache_dir)
