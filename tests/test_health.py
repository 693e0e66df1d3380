"""/health tells what is true now: the model loaded and answering, the turns served, the worker
queue; and a model server that cannot be reached gets a spoken apology over HTTP, a degraded
health, and both recover once the model server is back."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from servers import LlamaServer, running_server, serve_in_thread, turn_events
from voxloop import api, assets, audio
from voxloop.config import Settings
from voxloop.pipeline import LLM_APOLOGY, Pipeline
from voxloop_bench import free_port
from voxloop_bench.recordings import normalize

QUESTION = "What is the capital of France?"
APOLOGY_WORDS = ["sorry", "language", "model"]  # heard back in the spoken apology


def _health(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}health", timeout=30)
    assert response.status_code == 200
    health: dict[str, Any] = response.json()
    return health


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `voxloop serve` with the packaged model."""
    with running_server(tmp_path_factory.mktemp("health")) as url:
        yield url


def test_health_follows_the_worker_queue_and_the_turns(server: str) -> None:
    before = _health(server)
    assert before["status"] == "ok" and before["llm"]["loaded"] is True
    assert before["llm"]["problem"] is None
    assert before["turns"] == {} and before["working"] == 0 and before["waiting"] == 0
    form = {"text": "Tell me about the city of Paris in five sentences."}
    with httpx.stream("POST", f"{server}v1/voxloop/turn", data=form, timeout=120) as response:
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        during = _health(server)  # the turn holds its worker until its last byte is sent
        events = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
    assert during["working"] == 1
    assert events[-1]["type"] == "done"
    after = _health(server)
    assert after["turns"] == {"answered": 1} and after["working"] == 0


def test_health_says_whether_the_model_is_loaded(settings: Settings) -> None:
    # Settings of their own load a model of their own: this process may hold the default one.
    llm = settings.llm.model_copy(update={"max_tokens": settings.llm.max_tokens + 1})
    pipeline = Pipeline(settings.model_copy(update={"llm": llm}))
    app = FastAPI()
    api.install(app, pipeline, lambda: 0)
    with serve_in_thread(app) as url:
        before = _health(f"{url}/")
        events = turn_events(url, text=QUESTION)
        after = _health(f"{url}/")
    assert before["llm"]["loaded"] is False and before["turns"] == {}
    assert events[-1]["outcome"] == "answered"
    assert after["llm"]["loaded"] is True and after["turns"] == {"answered": 1}


@pytest.fixture(scope="module")
def llm_port() -> int:
    """The port of a model server that is not running (yet)."""
    return free_port()


@pytest.fixture(scope="module")
def remote_server(tmp_path_factory: pytest.TempPathFactory, llm_port: int) -> Iterator[str]:
    """`voxloop serve` whose language model is a server on `llm_port`, which is down."""
    with running_server(
        tmp_path_factory.mktemp("remote"),
        VOXLOOP_LLM__BACKEND="openai",
        VOXLOOP_LLM__BASE_URL=f"http://127.0.0.1:{llm_port}/v1",
        VOXLOOP_LLM__MODEL=LlamaServer.alias,
    ) as url:
        yield url


def _heard(url: str, events: list[dict[str, Any]]) -> str:
    """The reply audio of a turn, transcribed back by the server."""
    chunks = [e for e in events if e["type"] == "audio"]
    assert chunks, "the apology is spoken"
    pcm = b"".join(base64.b64decode(c["pcm_s16le"]) for c in chunks)
    wav = audio.wav_bytes(np.frombuffer(pcm, "<i2"), chunks[0]["sample_rate"])
    response = httpx.post(
        f"{url}v1/audio/transcriptions", files={"file": ("reply.wav", wav)}, timeout=120
    )
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def test_an_unreachable_model_server_gets_a_spoken_apology_over_http(
    remote_server: str, llm_port: int, settings: Settings
) -> None:
    down = _health(remote_server)
    assert down["status"] == "degraded" and "Cannot reach" in down["llm"]["problem"]
    events = turn_events(remote_server, text=QUESTION)
    done = events[-1]
    assert done["type"] == "done" and done["outcome"] == "apologized"
    assert done["transcript"] == QUESTION, "the person's words are kept"
    written = "".join(e["delta"] for e in events if e["type"] == "reply")
    assert written.strip() == LLM_APOLOGY
    heard = normalize(_heard(remote_server, events))
    assert all(word in heard for word in APOLOGY_WORDS), heard
    assert _health(remote_server)["turns"] == {"apologized": 1}

    model = assets.gguf_path("qwen2.5-0.5b", settings.cache_dir)
    server = LlamaServer(model, port=llm_port).start()  # the model server comes back
    try:
        answered = turn_events(remote_server, text=QUESTION)[-1]
    finally:
        server.kill()
    assert answered["outcome"] == "answered" and "paris" in answered["reply"].lower()
    back = _health(remote_server)
    assert back["status"] == "ok" and back["llm"]["problem"] is None
    assert back["turns"] == {"apologized": 1, "answered": 1}
