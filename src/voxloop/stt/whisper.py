"""Whisper through faster-whisper (CTranslate2): accurate final transcripts, language detection."""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from voxloop import assets
from voxloop.audio import SAMPLE_RATE
from voxloop.config import STTSettings
from voxloop.stt import Transcript, engines, rescore
from voxloop.stt.rescore import Reading
from voxloop.text import words

# Re-decoding the whole utterance is Whisper's only way to give partials: at most once per
# this much new audio, so a live stream costs at most one decode per second of speech.
PARTIAL_EVERY_SECONDS = 1.0
# Whisper reads at most 224 prompt tokens; the last words of a conversation matter most.
PROMPT_MAX_WORDS = 60
WHISPER_WINDOW_SECONDS = 30.0  # the audio window Whisper's encoder was trained on
FRAMES_PER_SECOND = 100  # Whisper's log-mel frames
# Audio after the speech in a shortened window, so the last word is not cut at the edge.
WINDOW_TAIL_SECONDS = 1.0
# A segment that starts this close to the end of the audio, or after it, is Whisper repeating
# itself into the silence of a short window, not speech.
SEGMENT_END_MARGIN_SECONDS = 0.1
# More words than this per second of audio (plus a few) is Whisper looping, not speech: people
# say at most ~4.5 a second; the set's fastest clip has 4.4.
MAX_WORDS_PER_SECOND = 5.0
LOOP_SLACK_WORDS = 2
# A transcript that is the same words twice over, at least this many each time, is said once
# ("Stop. Stop." stays as said).
MIN_REPEATED_WORDS = 3
# faster-whisper's temperatures, tried in turn while a transcript looks unsure or repetitive
# (stt.whisper_fallback); without it, one greedy (or beam) decode at temperature 0.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class WhisperTranscriber:
    """faster-whisper on the CPU with int8 weights."""

    def __init__(self, settings: STTSettings, cache_dir: Path) -> None:
        self.settings = settings
        path = assets.whisper_dir(settings.whisper_model, cache_dir)
        self.model = _windowed_model(str(path), settings.threads)
        self.rescorer = rescore.load(settings.rescore_model, cache_dir, settings.threads)

    def transcribe(
        self,
        audio: np.ndarray,
        prompt: str | None = None,
        language: str | None = None,
        partial: bool = False,
    ) -> Transcript:
        """Transcribe a whole recording (16 kHz mono float32), in `language` if given.

        `prompt`: recent words of the conversation, which make Whisper expect its names and
        words (faster-whisper's initial prompt). A `partial` transcript (of speech still going
        on) is Whisper's first reading, never rescored.
        """
        if not self.model.model.is_multilingual:
            language = "en"
        language = language or self.settings.language
        seconds = len(audio) / SAMPLE_RATE
        window = self._window_seconds(seconds, language)
        segments, info = self._decode(audio, window, language, prompt)
        text = said_once(_joined(segments))
        if window < WHISPER_WINDOW_SECONDS and (not text or _looped(text, seconds)):
            segments, info = self._decode(audio, WHISPER_WINDOW_SECONDS, language, prompt)
            text = said_once(_joined(segments))
        encoded, self.model.window.encoded = self.model.window.encoded, None
        logprob = _mean_logprob(segments)
        if not partial and encoded is not None and text and self._unsure(logprob):
            text = self._likeliest(encoded, info.language, prompt, seconds) or text
        transcript = Transcript(text=text, language=info.language, logprob=logprob)
        if not self.settings.readings or encoded is None:
            return transcript
        readings = functools.partial(self._readings, encoded, info.language)
        return replace(transcript, readings=functools.cache(readings))

    def _unsure(self, logprob: float | None) -> bool:
        """Whether a transcript is unsure enough to be rescored: the rest are nearly always
        right as they are, and rescoring costs a beam decode (~0.1 s)."""
        below = self.settings.rescore_below
        return self.rescorer is not None and logprob is not None and logprob < below

    def _likeliest(self, encoded: Any, language: str, prompt: str | None, seconds: float) -> str:
        """Of Whisper's `stt.rescore_readings` readings of the `encoded` audio (all of it, at
        most one window), the one the rescoring model finds likeliest; "" if none. English
        only: it was measured on English, and SmolLM2 knows little else."""
        if seconds > WHISPER_WINDOW_SECONDS or language != "en" or self.rescorer is None:
            return ""
        count = self.settings.rescore_readings
        readings = [reading for reading in self._beam(encoded, language, prompt or "", count)
                    if not _looped(reading.text, seconds)]  # fmt: skip
        return self.rescorer.likeliest(readings)

    def _readings(self, encoded: Any, language: str, expected: str) -> tuple[str, ...]:
        """Whisper's beam over the `encoded` audio, with the `expected` words as its prompt:
        `stt.readings` transcripts, best first."""
        readings = self._beam(encoded, language, expected, self.settings.readings)
        return tuple(dict.fromkeys(reading.text for reading in readings))

    def _beam(self, encoded: Any, language: str, expected: str, count: int) -> list[Reading]:
        """`count` readings of the `encoded` audio by Whisper's beam, best first, with the
        `expected` words as its prompt."""
        from faster_whisper.tokenizer import Tokenizer

        model = self.model
        tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
        )
        previous = tokenizer.encode(" " + _last_words(expected).strip()) if expected else []
        start = model.get_prompt(tokenizer, previous, without_timestamps=True)
        (result,) = model.model.generate(
            encoded, [start], beam_size=count, num_hypotheses=count,
            max_length=model.max_length, suppress_blank=True, return_scores=True,
        )  # fmt: skip
        readings = []
        for ids, score in zip(result.sequences_ids, result.scores, strict=True):
            said = [token for token in ids if token < tokenizer.eot]
            text = said_once(tokenizer.decode(said).strip())
            # CTranslate2's score is the mean over the tokens (its length penalty of 1)
            if text:
                readings.append(Reading(text, score * len(said)))
        return readings

    def _decode(
        self, audio: np.ndarray, window: float, language: str | None, prompt: str | None
    ) -> tuple[list[Any], Any]:
        """Whisper's segments of `audio` with the encoder reading `window` seconds, and the
        transcription's info; segments past the audio's end (repeats) dropped."""
        seconds = len(audio) / SAMPLE_RATE
        self.model.window.frames = round(window * FRAMES_PER_SECOND)
        try:
            segments, info = self.model.transcribe(
                audio,
                language=language,
                beam_size=self.settings.beam_size,
                temperature=FALLBACK_TEMPERATURES if self.settings.whisper_fallback else 0.0,
                condition_on_previous_text=False,
                # Timestamps show where a short window's speech ends: see _window_seconds.
                without_timestamps=window >= WHISPER_WINDOW_SECONDS,
                initial_prompt=_last_words(prompt) if prompt else None,
            )
            kept = [s for s in segments if s.start < seconds - SEGMENT_END_MARGIN_SECONDS]
        finally:
            self.model.window.frames = None
        return kept, info

    def _window_seconds(self, seconds: float, language: str | None) -> float:
        """How much audio the encoder reads for a recording of `seconds`.

        Whisper always encodes 30 s, padding a short question with silence: most of its time.
        A shorter window (`stt.whisper_window_seconds`) is about twice as fast and nearly as
        accurate (docs/benchmarks.md, speech to text), but in a short window Whisper may start
        the text again after the speech; with timestamps on, those repeats start after the
        audio's end and are dropped, and a transcript still too long for its audio (or an empty
        one: a short window may take a short word for silence) is decoded again in the whole
        window. Windows under ~10 s repeat too often: see the benchmark. Measured on English
        only: other languages (or one still to detect) keep the whole window.
        """
        shortest = self.settings.whisper_window_seconds
        if language != "en" or not shortest or shortest >= WHISPER_WINDOW_SECONDS:
            return WHISPER_WINDOW_SECONDS
        return min(WHISPER_WINDOW_SECONDS, max(shortest, seconds + WINDOW_TAIL_SECONDS))

    def detect_language(self, audio: np.ndarray) -> str:
        """The language spoken in `audio` (ISO 639-1 code); 'en' for an English-only model."""
        if not self.model.model.is_multilingual:
            return "en"
        language, _probability, _all = self.model.detect_language(audio)
        return str(language)

    def stream(self) -> WhisperStream:
        """A live transcription that re-decodes the growing utterance now and then."""
        return WhisperStream(self)


def _windowed_model(path: str, threads: int) -> Any:
    """A faster-whisper model whose encoder reads only `model.window.frames` of its padded
    30 s of features, when a transcription sets that, and keeps the last encoded audio for
    other readings of it (per thread: the engine is shared)."""
    from faster_whisper import WhisperModel

    class Window(threading.local):
        frames: int | None = None
        encoded: Any = None  # the last audio encoded, kept for other readings of it

    class WindowedWhisperModel(WhisperModel):
        window = Window()

        def encode(self, features: np.ndarray) -> Any:
            if self.window.frames:
                features = np.ascontiguousarray(features[..., : self.window.frames])
            self.window.encoded = super().encode(features)
            return self.window.encoded

    return WindowedWhisperModel(path, device="cpu", compute_type="int8", cpu_threads=threads)


def _joined(segments: list[Any]) -> str:
    """The segments' text as one transcript."""
    return " ".join(segment.text.strip() for segment in segments).strip()


def _looped(text: str, seconds: float) -> bool:
    """Whether `text` holds more words than anyone says in `seconds`: a decoding loop."""
    return len(text.split()) > MAX_WORDS_PER_SECOND * seconds + LOOP_SLACK_WORDS


def said_once(text: str) -> str:
    """`text` said once when it is the same words two or more times over: Whisper sometimes
    writes a short question twice or three times within the audio ("What is the capital of
    Japan??. What is the capital of Japan?." from the page's microphone; more often with a
    conversation prompt), which costs a decode in the whole window when it looks like a loop."""
    tokens = text.split()
    said = [words(token) for token in tokens]  # punctuation and case aside
    for size in range(MIN_REPEATED_WORDS, len(tokens) // 2 + 1):
        if len(tokens) % size == 0 and said == said[:size] * (len(tokens) // size):
            # "Japan??." -> "Japan?"
            return re.sub(r"([.!?])[.!?]+$", r"\1", " ".join(tokens[:size]))
    return text


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

    def add(self, audio: np.ndarray, up_to_date: bool = False) -> str:
        """Append audio; re-transcribe once enough new audio has arrived (or `up_to_date`)."""
        self.chunks.append(np.asarray(audio, dtype=np.float32))
        self.samples += len(audio)
        new_samples = self.samples - self.decoded_samples
        if new_samples >= PARTIAL_EVERY_SECONDS * SAMPLE_RATE or (up_to_date and new_samples):
            self.partial = self.engine.transcribe(np.concatenate(self.chunks), partial=True).text
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
