"""`voxloop bench realtime`: end of speech to the first `response.output_audio.delta` over the
OpenAI Realtime API on loopback, with server VAD: the same ten spoken questions as `voxloop
bench handsfree`, sent as 24 kHz PCM16 appends at the pace of a microphone, to a real
`voxloop serve`; compare with the page's hands-free figure."""

from __future__ import annotations

import base64
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from voxloop import audio
from voxloop.config import Settings
from voxloop_bench import _percentile, _spoken_questions, local_server, progress, suite

API_RATE = 24000
APPEND_SECONDS = 0.1  # one append per 100 ms, as a client streaming a microphone would
TRAILING_SILENCE_SECONDS = 1.5  # after the question: the server's VAD must see the turn end
ANSWER_TIMEOUT_SECONDS = 120


@suite("realtime")
def realtime(settings: Settings) -> dict[str, Any]:
    """End of speech -> first output audio, per question, over /v1/realtime."""
    from websockets.sync.client import connect

    questions = _spoken_questions(settings)
    with ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url, _process = stack.enter_context(local_server(data_dir))
        socket = stack.enter_context(connect(f"{url.replace('http', 'ws', 1)}/v1/realtime"))
        _next(socket, "session.created")
        latencies = [_ask(socket, q) for q in progress(questions, "realtime", "question")]
    return {
        "questions": len(latencies),
        "end_of_speech_to_first_audio_ms": {
            "p50": round(statistics.median(latencies)),
            "p95": round(_percentile(latencies, 0.95)),
            "all": [round(ms) for ms in latencies],
        },
    }


def _ask(socket: Any, question: np.ndarray) -> float:
    """Stream one question in real time; ms from its end to the first audio of the answer."""
    silence = np.zeros(round(TRAILING_SILENCE_SECONDS * audio.SAMPLE_RATE), np.float32)
    pcm = audio.to_int16(audio.resample(np.concatenate([question, silence]), 16000, API_RATE))
    step = round(APPEND_SECONDS * API_RATE)
    started = time.monotonic()
    speech_ends_at = started + len(question) / audio.SAMPLE_RATE
    first_audio_at = None
    for start in range(0, len(pcm), step):
        piece = base64.b64encode(pcm[start : start + step].astype("<i2").tobytes()).decode()
        socket.send(json.dumps({"type": "input_audio_buffer.append", "audio": piece}))
        due = started + (start + step) / API_RATE
        first_audio_at = first_audio_at or _first_audio_until(socket, due)
    first_audio_at = first_audio_at or _first_audio_until(socket, time.monotonic() + 60)
    if first_audio_at is None:
        raise TimeoutError("no answer audio came back")
    played = _next(socket, "response.done", collect_audio=True)
    time.sleep(played)  # as a client would play it: speaking now would interrupt it
    return (first_audio_at - speech_ends_at) * 1000


def _first_audio_until(socket: Any, until: float) -> float | None:
    """Read events until `until`; the time the first answer audio arrived, if it did."""
    while (left := until - time.monotonic()) > 0:
        try:
            event = json.loads(socket.recv(timeout=left))
        except TimeoutError:
            return None
        if event["type"] == "response.output_audio.delta":
            return time.monotonic()
    return None


def _next(socket: Any, kind: str, collect_audio: bool = False) -> float:
    """Read until an event of type `kind`; the seconds of answer audio read on the way."""
    seconds = 0.0
    deadline = time.monotonic() + ANSWER_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        event = json.loads(socket.recv(timeout=ANSWER_TIMEOUT_SECONDS))
        if collect_audio and event["type"] == "response.output_audio.delta":
            seconds += len(base64.b64decode(event["delta"])) / 2 / API_RATE
        if event["type"] == kind:
            return seconds
    raise TimeoutError(f"no {kind} from the server")
