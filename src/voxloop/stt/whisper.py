"""Whisper through faster-whisper (CTranslate2): accurate final transcripts, language detection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from voxloop import assets
from voxloop.audio import SAMPLE_RATE
from voxloop.config import STTSettings
from voxloop.stt import Transcript, engines

# Re-decoding the whole utterance is Whisper's only way to give partials: at most once per
# this much new audio, so a live stream costs at most one decode per second of speech.
PARTIAL_EVERY_SECONDS = 1.0
# Whisper reads at most 224 prompt tokens; the last words of a conversation matter most.
PROMPT_MAX_WORDS = 60


class WhisperTranscriber:
    """faster-whisper on the CPU with int8 weights."""

    def __init__(self, settings: STTSettings, cache_dir: Path) -> None:
        from faster_whisper import WhisperModel

        self.settings = settings
        path = assets.whisper_dir(settings.whisper_model, cache_dir)
        self.model = WhisperModel(
            str(path), device="cpu", compute_type="int8", cpu_threads=settings.threads
        )

    def transcribe(
        self, audio: np.ndarray, prompt: str | None = None, language: str | None = None
    ) -> Transcript:
        """Transcribe a whole recording (16 kHz mono float32), in `language` if given.

        `prompt`: recent words of the conversation, which make Whisper expect its names and
        words (faster-whisper's initial prompt).
        """
        if not self.model.model.is_multilingual:
            language = "en"
        language = language or self.settings.language
        segments, info = self.model.transcribe(
            audio,
            language=language,
            beam_size=self.settings.beam_size,
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=_last_words(prompt) if prompt else None,
        )
        segments = list(segments)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        return Transcript(text=text, language=info.language, logprob=_mean_logprob(segments))

    def detect_language(self, audio: np.ndarray) -> str:
        """The language spoken in `audio` (ISO 639-1 code); 'en' for an English-only model."""
        if not self.model.model.is_multilingual:
            return "en"
        language, _probability, _all = self.model.detect_language(audio)
        return str(language)

    def stream(self) -> WhisperStream:
        """A live transcription that re-decodes the growing utterance now and then."""
        return WhisperStream(self)


def _last_words(prompt: str) -> str:
    """The end of `prompt`, short enough to leave Whisper's context for the transcript."""
    return " ".join(prompt.split()[-PROMPT_MAX_WORDS:])


def _mean_logprob(segments: list[Any]) -> float | None:
    """Mean token log-probability over segments, weighted by their tokens."""
    tokens = sum(len(segment.tokens) for segment in segments)
    if not tokens:
        return None
    return sum(segment.avg_logprob * len(segment.tokens) for segment in segments) / tokens


class WhisperStream:
    """Partial transcripts for Whisper, which has no streaming decoder of its own."""

    def __init__(self, engine: WhisperTranscriber) -> None:
        self.engine = engine
        self.chunks: list[np.ndarray] = []
        self.samples = 0
        self.decoded_samples = 0
        self.partial = ""

    def add(self, audio: np.ndarray) -> str:
        """Append audio; re-transcribe once enough new audio has arrived."""
        self.chunks.append(np.asarray(audio, dtype=np.float32))
        self.samples += len(audio)
        if self.samples - self.decoded_samples >= PARTIAL_EVERY_SECONDS * SAMPLE_RATE:
            self.partial = self.engine.transcribe(np.concatenate(self.chunks)).text
            self.decoded_samples = self.samples
        return self.partial

    def finish(self) -> Transcript:
        """Transcribe the whole utterance."""
        if not self.chunks:
            return Transcript("")
        return self.engine.transcribe(np.concatenate(self.chunks))

    def close(self) -> None:
        """Drop the audio (nothing runs in the background)."""
        self.chunks.clear()


@engines.register("whisper")
def _build(settings: STTSettings, cache_dir: Path) -> WhisperTranscriber:
    return WhisperTranscriber(settings, cache_dir)
