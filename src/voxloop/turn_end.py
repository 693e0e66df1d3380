"""Semantic end of turn: has the person finished speaking, or only paused to think?

Smart Turn v3.2 (an int8 ONNX model that ships in the pipecat-ai wheel, see assets.py) reads
the last 8 s of an utterance as Whisper's log-mel features - computed by faster-whisper's
feature extractor, the one voxloop's Whisper uses - and gives the probability that the speaker
has finished. The turn detector (vad.TurnDetector) asks it after a short silence.
"""

from __future__ import annotations

import functools

import numpy as np

from voxloop.audio import SAMPLE_RATE

WINDOW_SECONDS = 8  # what the model reads: the end of the utterance, zero-padded in front
MEL_BINS = 80
NORMALIZE_EPSILON = 1e-7  # the model was trained on zero-mean, unit-variance waveforms


class SmartTurn:
    """The end-of-turn model, loaded once per process (`smart_turn()`)."""

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        from voxloop.assets import smart_turn_path

        options = onnxruntime.SessionOptions()
        # One thread by default: a call is ~0.1 s either way, and it runs beside the answer
        # being prepared, which needs the other cores.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(smart_turn_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.features = FeatureExtractor(
            feature_size=MEL_BINS, sampling_rate=SAMPLE_RATE, chunk_length=WINDOW_SECONDS
        )

    def finished(self, audio: np.ndarray) -> float:
        """The probability that the speaker has finished, given 16 kHz `audio` so far."""
        window = WINDOW_SECONDS * SAMPLE_RATE
        audio = np.asarray(audio, np.float32)[-window:]
        audio = np.pad(audio, (window - len(audio), 0))
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + NORMALIZE_EPSILON)
        features = self.features(audio, padding=0)[np.newaxis].astype(np.float32)
        (probability,) = self.session.run(None, {"input_features": features})
        return float(np.asarray(probability).ravel()[0])


@functools.cache
def smart_turn() -> SmartTurn:
    """The process's end-of-turn model."""
    return SmartTurn()
