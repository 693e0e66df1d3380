"""The OpenAI Realtime API at /v1/realtime, driven by the official `openai` client against a
real `voxloop serve`: a spoken question answered with audio and transcript, a typed question,
barge-in, and bad input that gets an `error` event while the connection goes on."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from fastapi import FastAPI

from servers import running_server, serve_in_thread
from voxloop import audio
from voxloop.doors.realtime import realtime_socket
from voxloop.memory import Memory
from voxloop.pipeline import Pipeline

API_RATE = 24000  # the Realtime API's audio/pcm rate
CHUNK_SECONDS = 0.1
EVENTS_WITHIN = 400  # events to read before giving up on one that should come
MAX_SECONDS = 20  # this server's audio limit, small so the "too long" case stays quick
SLOW_START_SECONDS = 0.5  # a model slow to start (a loaded machine)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server's data folder (its memory)."""
    return tmp_path_factory.mktemp("realtime")


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[str]:
    """A real `voxloop serve` on loopback."""
    limit = {"VOXLOOP_AUDIO__MAX_SECONDS": str(MAX_SECONDS)}
    with running_server(data_dir, **limit) as url:
        yield url.rstrip("/")


@pytest.fixture()
def client(server: str) -> openai.OpenAI:
    """The official OpenAI client, pointed at voxloop."""
    return openai.OpenAI(base_url=f"{server}/v1", api_key="not-needed", max_retries=0)


def _pcm_chunks(samples: np.ndarray, rate: int = API_RATE) -> list[str]:
    """16 kHz float samples as base64 PCM16 at `rate`, in 100 ms appends."""
    pcm = audio.to_int16(audio.resample(samples, audio.SAMPLE_RATE, rate)).astype("<i2")
    step = round(CHUNK_SECONDS * rate)
    return [
        base64.b64encode(pcm[i : i + step].tobytes()).decode() for i in range(0, len(pcm), step)
    ]


def _said(path: Path, silence_after: float = 1.5) -> np.ndarray:
    silence = np.zeros(round(audio.SAMPLE_RATE * 0.5), np.float32)
    after = np.zeros(round(audio.SAMPLE_RATE * silence_after), np.float32)
    return np.concatenate([silence, audio.load(path), after])


def _until(connection: Any, kind: str, seen: list[Any]) -> Any:
    """Read events (kept in `seen`) until one of type `kind`."""
    for _ in range(EVENTS_WITHIN):
        event = connection.recv()
        seen.append(event)
        if event.type == kind:
            return event
    raise AssertionError(f"no {kind} in {[e.type for e in seen]}")


def _audio_seconds(events: list[Any], rate: int = API_RATE) -> float:
    deltas = [e.delta for e in events if e.type == "response.output_audio.delta"]
    return sum(len(base64.b64decode(d)) for d in deltas) / 2 / rate


def test_a_spoken_question_is_answered_with_audio_and_transcript(
    client: openai.OpenAI, spoken
) -> None:  # type: ignore[no-untyped-def]
    seen: list[Any] = []
    with client.realtime.connect(model="gpt-realtime") as connection:
        assert (
            _until(connection, "session.created", seen).session.audio.input.format.rate == API_RATE
        )
        for chunk in _pcm_chunks(_said(spoken("What is the capital of France?"))):
            connection.input_audio_buffer.append(audio=chunk)
        done = _until(connection, "response.done", seen)
    kinds = [e.type for e in seen]
    for before, after in [
        ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped"),
        ("input_audio_buffer.speech_stopped", "input_audio_buffer.committed"),
        ("input_audio_buffer.committed", "conversation.item.added"),
        ("response.created", "response.output_item.added"),
        ("response.content_part.added", "response.output_audio.delta"),
        ("response.output_audio.delta", "response.output_audio.done"),
        ("response.output_audio_transcript.done", "response.done"),
    ]:
        assert kinds.index(before) < kinds.index(after), (before, after, kinds)
    heard = next(e for e in seen if e.type.endswith("input_audio_transcription.completed"))
    assert "capital of france" in heard.transcript.lower()
    transcript = next(e for e in seen if e.type == "response.output_audio_transcript.done")
    assert "paris" in transcript.transcript.lower()
    assert done.response.status == "completed" and _audio_seconds(seen) > 1.0


def test_a_typed_question_at_16_khz_without_turn_detection(client: openai.OpenAI) -> None:
    seen: list[Any] = []
    with client.realtime.connect(model="gpt-realtime") as connection:
        connection.session.update(
            session={
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": None},
                    "output": {"format": {"type": "audio/pcm", "rate": 16000}},
                },
            }
        )
        updated = _until(connection, "session.updated", seen)
        assert updated.session.audio.input.turn_detection is None
        connection.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What is the capital of Italy?"}],
            }
        )
        connection.response.create()
        done = _until(connection, "response.done", seen)
        long_answer = _typed_request(connection, "Tell me about Rome in five sentences.")
        _until(connection, "response.output_audio.delta", long_answer)
        connection.response.cancel()
        cancelled = _until(connection, "response.done", long_answer)
    transcript = next(e for e in seen if e.type == "response.output_audio_transcript.done")
    assert "rome" in transcript.transcript.lower() and done.response.status == "completed"
    assert _audio_seconds(seen, 16000) > 0.5
    assert cancelled.response.status == "cancelled"


def test_speaking_over_an_answer_cancels_it_and_the_next_question_is_answered(
    client: openai.OpenAI, spoken
) -> None:  # type: ignore[no-untyped-def]
    seen: list[Any] = []
    with client.realtime.connect(model="gpt-realtime") as connection:
        long_question = spoken("Tell me about the city of Paris in five sentences.")
        for chunk in _pcm_chunks(_said(long_question)):
            connection.input_audio_buffer.append(audio=chunk)
        _until(connection, "response.output_audio.delta", seen)
        # Moonshine hears espeak's "two plus two" as "too plustoo": ask what it hears.
        for chunk in _pcm_chunks(_said(spoken("What is the capital of Japan?"))):
            connection.input_audio_buffer.append(audio=chunk)
        cancelled = _until(connection, "response.done", seen)
        answered = _until(connection, "response.done", seen)
    assert cancelled.response.status == "cancelled"
    assert answered.response.status == "completed"
    last = [e for e in seen if e.type == "response.output_audio_transcript.done"][-1]
    assert "tokyo" in last.transcript.lower()


def _error(connection: Any, seen: list[Any]) -> str:
    return str(_until(connection, "error", seen).error.code)


def test_bad_input_gets_an_error_and_the_connection_goes_on(client: openai.OpenAI) -> None:
    seen: list[Any] = []
    with client.realtime.connect(model="gpt-realtime") as connection:
        _until(connection, "session.created", seen)
        connection.send_raw("this is not JSON")
        assert _error(connection, seen) == "invalid_json"
        connection.send_raw(json.dumps({"type": "dance.now"}))
        assert _error(connection, seen) == "unknown_event"
        connection.input_audio_buffer.append(audio="%%% not base64 %%%")
        assert _error(connection, seen) == "invalid_base64"
        connection.session.update(
            session={"audio": {"input": {"format": {"type": "audio/pcm", "rate": 44100}}}}
        )
        assert _error(connection, seen) == "unsupported_audio_format"
        connection.session.update(session={"audio": {"input": {"turn_detection": None}}})
        _until(connection, "session.updated", seen)
        ten_seconds = base64.b64encode(np.zeros(API_RATE * 10, "<i2").tobytes()).decode()
        for _ in range(MAX_SECONDS // 10 + 1):
            connection.input_audio_buffer.append(audio=ten_seconds)
        assert _error(connection, seen) == "input_audio_buffer_too_long"
        connection.input_audio_buffer.clear()
        _until(connection, "input_audio_buffer.cleared", seen)
        connection.response.create()
        assert _error(connection, seen) == "no_user_message"
        done = _asked_twice_at_once(connection, seen)
    assert done.response.status == "completed"
    assert "Traceback" not in " ".join(str(e.error.message) for e in seen if e.type == "error")


def _typed_request(connection: Any, text: str) -> list[Any]:
    """Ask `text` as a typed user message; a list for the events that follow."""
    content = [{"type": "input_text", "text": text}]
    message = {"type": "message", "role": "user", "content": content}
    connection.conversation.item.create(item=message)
    connection.response.create()
    return []


def _asked_twice_at_once(connection: Any, seen: list[Any]) -> Any:
    """A typed question and two response.create at once: the second is refused; the first
    answer's response.done."""
    seen += _typed_request(connection, "Say the word yes.")
    connection.response.create()
    assert _error(connection, seen) == "conversation_already_has_active_response"
    return _until(connection, "response.done", seen)


def _typed(connection: Any, text: str, seen: list[Any]) -> Any:
    """Ask `text` as a typed user message; the response.done."""
    seen += _typed_request(connection, text)
    return _until(connection, "response.done", seen)


def test_memory_is_the_sessions_and_a_truncated_answer_is_kept_as_heard(
    client: openai.OpenAI, data_dir: Path
) -> None:
    seen: list[Any] = []
    ada = {"type": "realtime", "voxloop": {"session": "ada"}}
    with client.realtime.connect(model="gpt-realtime") as connection:
        connection.session.update(session=ada)  # type: ignore[arg-type]
        _until(connection, "session.updated", seen)
        _typed(connection, "My name is Ada and my cat is called Pixel.", seen)
        told = _typed(connection, "Tell me about the city of Paris in five sentences.", seen)
        item = told.response.output[0].id
        connection.conversation.item.truncate(item_id=item, content_index=0, audio_end_ms=1000)
        truncated = _until(connection, "conversation.item.truncated", seen)
    assert truncated.item_id == item and truncated.audio_end_ms == 1000
    with client.realtime.connect(model="gpt-realtime") as connection:
        connection.session.update(session=ada)  # type: ignore[arg-type]
        _typed(connection, "What is my cat called?", seen)
    answer = [e for e in seen if e.type == "response.output_audio_transcript.done"][-1]
    assert "pixel" in answer.transcript.lower()
    stored = Memory(data_dir / "voxloop.db").exchanges("ada")
    paris = next(reply for said, reply in stored if "Paris" in said)
    assert paris.endswith("…") and len(paris.split()) < 12, paris


def test_semantic_turn_detection_answers_a_spoken_question(client: openai.OpenAI, spoken) -> None:  # type: ignore[no-untyped-def]
    seen: list[Any] = []
    semantic = {"type": "semantic_vad", "eagerness": "high"}
    with client.realtime.connect(model="gpt-realtime") as connection:
        connection.session.update(
            session={"type": "realtime", "audio": {"input": {"turn_detection": semantic}}}
        )
        updated = _until(connection, "session.updated", seen)
        assert updated.session.audio.input.turn_detection.type == "semantic_vad"
        for chunk in _pcm_chunks(_said(spoken("What is the capital of Germany?"))):
            connection.input_audio_buffer.append(audio=chunk)
        _until(connection, "response.done", seen)
    transcript = next(e for e in seen if e.type == "response.output_audio_transcript.done")
    assert "berlin" in transcript.transcript.lower()


def test_a_second_response_create_is_refused_while_the_first_is_still_starting(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: the answer starts late, so the second response.create comes before it
    # has (on a loaded machine this happened by chance: "no_user_message" came back instead).
    run = pipeline.run

    def slow_start(*args: Any, **kwargs: Any) -> Iterator[Any]:
        time.sleep(SLOW_START_SECONDS)
        yield from run(*args, **kwargs)

    app = FastAPI()
    app.state.pipeline = pipeline
    app.add_api_websocket_route("/v1/realtime", realtime_socket)
    seen: list[Any] = []
    with serve_in_thread(app) as url:
        monkeypatch.setattr(pipeline, "run", slow_start)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="not-needed", max_retries=0)
        with client.realtime.connect(model="gpt-realtime") as connection:
            done = _asked_twice_at_once(connection, seen)
    assert done.response.status == "completed"
