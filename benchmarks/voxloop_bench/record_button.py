"""`voxloop bench record`: the record button, stop to first audio in the pipeline, with the
recording streamed while it is spoken and answered from the stream (recording_stream.py, as
the page does with server.answer_at_stop: the answer is prepared in the pause before stop)
against the upload path (the recording is transcribed after stop). The same ten spoken
questions as `voxloop bench latency`, each fed at the pace of a microphone with a short
silence either side, as a person clicks record, speaks, and clicks stop."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from voxloop import audio, recording_stream
from voxloop.config import Settings
from voxloop.errors import VoxloopError
from voxloop.live import LiveSessions
from voxloop.pipeline import Pipeline
from voxloop.prompts import build_messages
from voxloop.turns import Event, Speech, TurnRequest
from voxloop_bench import (
    _percentile,
    _spoken_questions,
    feed_like_a_microphone,
    progress,
    suite,
)

CLIENT = "bench"
LEAD_SECONDS = 0.3  # from the click on record to the first word
# From the last word to the click on stop (VOXLOOP_BENCH_RECORD_TAIL_SECONDS; the browser test
# clicks at 1.2 s).
TAIL_SECONDS = float(os.environ.get("VOXLOOP_BENCH_RECORD_TAIL_SECONDS", "0.5"))
PRIMED_WORDS = "Hello."  # what the model last read before each measured turn


@suite("record")
def record(settings: Settings) -> dict[str, Any]:
    """Stop -> first audio per question, streamed and uploaded (alternating, same audio)."""
    pipeline = Pipeline(settings)
    pipeline.warm_up()
    live = LiveSessions()
    streamed: list[float] = []
    uploaded: list[float] = []
    ready: list[float] = []  # stop -> the streamed transcript in hand
    ahead = 0  # streamed turns whose answer was prepared in the pause before stop
    for question in progress(_spoken_questions(settings), "record", "question"):
        clip = np.concatenate([_silence(LEAD_SECONDS), question, _silence(TAIL_SECONDS)])
        recording_stream.start(live, CLIENT, pipeline, answer_at_stop=True)
        feed_like_a_microphone(lambda frame: recording_stream.feed(live, CLIENT, frame), clip)
        stopped = time.perf_counter()
        recording_stream.stop(live, CLIENT)
        recording = recording_stream.take(live, CLIENT, len(clip) / audio.SAMPLE_RATE)
        turn = recording.turn if recording is not None else None
        # The bench measures the stream: it must have given the turn its words.
        if recording is None or recording.transcript() is None or turn is None:
            raise VoxloopError("the streamed recording gave no transcript")
        ready.append(_ms_since(stopped))
        if not turn.began():
            raise VoxloopError("the streamed recording's turn did not start")
        streamed.append(_first_audio_ms(turn.events(), stopped))
        ahead += turn.ahead
        _forget_the_question(pipeline)
        uploaded.append(_first_audio_ms(pipeline.run(TurnRequest(audio=clip)), time.perf_counter()))
        _forget_the_question(pipeline)
    return {
        "questions": len(streamed),
        "transcript_ready_after_stop_ms": _figures(ready),
        "answered_ahead": ahead,
        "stop_to_first_audio_ms": {"streamed": _figures(streamed), "uploaded": _figures(uploaded)},
    }


def _forget_the_question(pipeline: Pipeline) -> None:
    """Leave the model with only the system prompt evaluated, as a server's turn finds it:
    else the second path would find the same question's prompt evaluated already."""
    pipeline.prime(build_messages(pipeline.settings.system_prompt, [], PRIMED_WORDS))


def _first_audio_ms(events: Iterator[Event], since: float) -> float:
    """Milliseconds from `since` to the turn's first audio; the rest of the turn runs out."""
    first = None
    for event in events:
        if isinstance(event, Speech) and first is None:
            first = _ms_since(since)
    if first is None:
        raise VoxloopError("the turn said nothing")
    return first


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * audio.SAMPLE_RATE), np.float32)


def _ms_since(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def _figures(values: list[float]) -> dict[str, Any]:
    return {
        "p50": round(statistics.median(values)),
        "p95": round(_percentile(values, 0.95)),
        "all": [round(v) for v in values],
    }
