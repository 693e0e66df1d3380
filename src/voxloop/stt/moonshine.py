"""Moonshine tiny-en (moonshine-voice): very fast English, with streaming partial transcripts."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from voxloop import assets
from voxloop.audio import SAMPLE_RATE
from voxloop.config import STTSettings
from voxloop.scheduling import lower_priority
from voxloop.stt import Transcript, engines

# Moonshine invents words for tiny fragments; lines shorter than this are dropped (MODELS.md).
MIN_LINE_SECONDS = 0.3
# moonshine-voice's MOONSHINE_FLAG_FORCE_UPDATE: analyse the audio added even when less than
# 200 ms came since the last analysis. Without it the transcript read 160 ms into a pause
# lacked the last words ("... during the year on?" for "... on Earth?"; docs/benchmarks.md).
FORCE_UPDATE = 1
_loading = threading.Lock()


def _thread_ids() -> set[int]:
    try:
        return {int(tid) for tid in os.listdir("/proc/self/task")}
    except OSError:  # not Linux: nothing to adjust
        return set()


def _text(lines: Any) -> str:
    return " ".join(
        line.text.strip() for line in lines if line.duration >= MIN_LINE_SECONDS and line.text
    ).strip()


class MoonshineTranscriber:
    """The tiny English Moonshine model shipped inside moonshine-voice 0.1.0."""

    def __init__(self, settings: STTSettings, cache_dir: Path) -> None:
        from moonshine_voice import ModelArch, Transcriber

        # Moonshine's runtime is not thread-safe: two transcriptions at once (API requests side
        # by side, a live stream beside a final transcript) return empty or garbled text, even
        # on two separately loaded models ("And, And Mr. John Dashwood ..." in 2 of 60 whole
        # transcriptions side by side; docs/benchmarks.md). So every call takes one lock.
        # Its runtime also keeps its worker threads spinning for ~30 ms after each call, which
        # would slow the language model starting right after it by as much. At the lowest
        # priority they still do all their work when the cores are free.
        self._busy = threading.Lock()
        with _loading:
            before = _thread_ids()
            self._model = Transcriber(
                model_path=str(assets.moonshine_tiny_en_dir()), model_arch=ModelArch.TINY
            )
            silence = np.zeros(SAMPLE_RATE, np.float32).tolist()
            self._model.transcribe_without_streaming(silence, SAMPLE_RATE)  # starts its threads
            lower_priority(_thread_ids() - before)

    def transcribe(self, audio: np.ndarray, prompt: str | None = None) -> Transcript:
        """Transcribe a whole recording (16 kHz mono float32); Moonshine takes no prompt."""
        samples = np.asarray(audio, dtype=np.float32).tolist()
        with self._busy:
            result = self._model.transcribe_without_streaming(samples, SAMPLE_RATE)
        return Transcript(text=_text(result.lines), language="en")

    def stream(self) -> MoonshineStream:
        """A live transcription using Moonshine's own streaming decoder."""
        with self._busy:
            stream = self._model.create_stream()
            stream.start()
        return MoonshineStream(stream, self._busy)


class MoonshineStream:
    """Feeds audio into a Moonshine stream and reads back the transcript so far."""

    def __init__(self, stream: Any, busy: threading.Lock) -> None:
        self.stream, self._busy = stream, busy
        self.text = ""

    def add(self, audio: np.ndarray, up_to_date: bool = False) -> str:
        """Append audio and return the updated partial transcript."""
        samples = np.asarray(audio, dtype=np.float32).tolist()
        with self._busy:
            self.stream.add_audio(samples, SAMPLE_RATE)
            lines = self.stream.update_transcription(FORCE_UPDATE if up_to_date else 0).lines
        self.text = _text(lines)
        return self.text

    def finish(self) -> Transcript:
        """Stop the stream and return the final transcript."""
        with self._busy:
            lines = self.stream.update_transcription(FORCE_UPDATE).lines
            self.stream.stop()
        self.text = _text(lines) or self.text
        return Transcript(text=self.text, language="en")

    def close(self) -> None:
        """Stop the stream without decoding again."""
        with self._busy:
            self.stream.stop()


@engines.register("moonshine")
def _build(settings: STTSettings, cache_dir: Path) -> MoonshineTranscriber:
    return MoonshineTranscriber(settings, cache_dir)
