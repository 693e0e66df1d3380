"""Faults: the language model server dies mid-reply, cannot be reached or does not answer;
a model file is corrupt at start. Each turn ends with a spoken and written apology, the next
turn works once the server is back, and a bad model is reported before serving."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from servers import LlamaServer, free_port, serve_in_thread, turn_events
from voxloop import api, assets
from voxloop import pipeline as pipeline_module
from voxloop.config import Settings, load_settings
from voxloop.pipeline import LLM_APOLOGY, Pipeline
from voxloop.turns import Done, ReplyText, Speech, Turn, TurnRequest


def _remote(base_url: str, timeout: float = 15.0) -> Pipeline:
    llm = {"backend": "openai", "base_url": base_url, "model": LlamaServer.alias}
    return Pipeline(load_settings(llm={**llm, "timeout_seconds": timeout}))


def _apologized(events: list[object]) -> Turn:
    """The finished turn, after checking that the apology was written and then spoken."""
    done = events[-1]
    assert isinstance(done, Done) and done.turn.outcome == "apologized"
    written = [e.delta for e in events if isinstance(e, ReplyText)]
    assert written[-1].strip() == LLM_APOLOGY
    spoken = [e for e in events if isinstance(e, Speech) and e.text == LLM_APOLOGY]
    assert sum(e.chunk.seconds for e in spoken) > 1.0
    return done.turn


def test_llm_server_killed_mid_reply_then_back(settings: Settings) -> None:
    server = LlamaServer(assets.gguf_path("qwen2.5-0.5b", settings.cache_dir)).start()
    pipeline = _remote(server.base_url)
    events: list[object] = []
    try:
        request = TurnRequest(text="Count slowly from one to one hundred, in words.")
        for event in pipeline.run(request):
            events.append(event)
            if isinstance(event, ReplyText) and len(events) == 4:
                server.kill()  # a crash, in the middle of the reply
        turn = _apologized(events)
        assert turn.reply.startswith(events[1].delta), "what was said before the crash is kept"
        assert "broke off" in (turn.failed or "") or "Cannot reach" in (turn.failed or "")

        server.start()  # the server comes back on the same port
        answer = list(pipeline.run(TurnRequest(text="What is the capital of France?")))
        done = answer[-1]
        assert isinstance(done, Done) and done.turn.outcome == "answered"
        assert "paris" in done.turn.reply.lower()
    finally:
        server.kill()


def test_unreachable_llm_server_gets_an_apology() -> None:
    pipeline = _remote(f"http://127.0.0.1:{free_port()}/v1")
    turn = _apologized(list(pipeline.run(TurnRequest(text="Hello?"))))
    assert "Cannot reach" in (turn.failed or "")
    assert turn.user_text == "Hello?", "the person's words are kept"


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers (a hung model server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:  # closed at the end of the test
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    listener.close()
    for connection in held:
        connection.close()


def test_silent_llm_server_times_out_into_an_apology(silent_server: str) -> None:
    pipeline = _remote(silent_server, timeout=2)
    turn = _apologized(list(pipeline.run(TurnRequest(text="Are you there?"))))
    assert "did not answer within 2 s" in (turn.failed or "")


BAD_MODELS = {
    "corrupt": (b"GGUF" + os.urandom(4096), ["damaged", "llm.model"]),  # right magic, then garbage
    "not a model": (b"PK\x03\x04 a zip file", ["not a GGUF model file"]),
    "missing": (None, ["neither a packaged model", "nor an existing .gguf file"]),
}


@pytest.mark.parametrize("name", list(BAD_MODELS))
def test_bad_model_file_is_reported_at_start(tmp_path: Path, name: str) -> None:
    content, words = BAD_MODELS[name]
    model = tmp_path / "model.gguf"
    if content is not None:
        model.write_bytes(content)
    result = subprocess.run(
        [sys.executable, "-m", "voxloop.cli", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "VOXLOOP_DATA_DIR": str(tmp_path), "VOXLOOP_LLM__MODEL": str(model)},
    )
    assert result.returncode == 2
    assert "voxloop is ready" not in result.stdout
    message = result.stderr.strip().splitlines()[-1]
    assert "model.gguf" in message and all(w in message for w in words), message
    assert "Traceback" not in result.stderr


def test_a_bug_mid_turn_ends_the_stream_with_an_error_and_the_server_goes_on(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> str:
        raise RuntimeError("injected fault")

    app = FastAPI()
    api.install(app, pipeline, lambda: 0)
    with serve_in_thread(app) as url:
        monkeypatch.setattr(pipeline, "_skill_answer", broken)
        failed = turn_events(url, text="What is the capital of France?")
        monkeypatch.undo()
        answered = turn_events(url, text="What is the capital of France?")
    assert failed[0]["type"] == "transcript" and failed[-1]["type"] == "error"
    assert failed[-1]["code"] == "internal_error" and "Traceback" not in failed[-1]["message"]
    assert answered[-1]["type"] == "done" and "paris" in answered[-1]["reply"].lower()


class LoopingModel:
    """A language model fallen into a loop: an answer, then one word said again and again,
    sentence after sentence, up to the token limit (what small models sometimes do)."""

    keeps_prefix = False

    def __init__(self) -> None:
        self.closed = threading.Event()

    def stream(
        self, messages: list[object], *, max_tokens: int, **_options: object
    ) -> Iterator[str]:
        """The answer, then "Sunscreen." until `max_tokens`."""
        try:
            yield from [
                "Pack",
                " warm",
                " clothes",
                " and",
                " good",
                " boots",
                ".",
                " Sunscreen",
                ".",
            ]
            for _ in range(max_tokens // 2):
                yield from [" Sunscreen", "."]
        finally:
            self.closed.set()


def test_a_reply_that_loops_is_ended_at_its_first_repeat_and_the_next_turn_works(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = LoopingModel()
    monkeypatch.setattr(pipeline_module, "get_chat_model", lambda _settings: model)
    pipeline = Pipeline(settings)
    for _turn in range(2):  # the loop's stream was closed: the model is free for the next turn
        events = list(pipeline.run(TurnRequest(text="What should I pack for a hike?")))
        done = events[-1]
        assert isinstance(done, Done) and done.turn.outcome == "answered"
        assert done.turn.reply.strip() == "Pack warm clothes and good boots. Sunscreen."
        seconds = sum(e.chunk.seconds for e in events if isinstance(e, Speech))
        assert 1.0 < seconds < 6.0, seconds  # the answer, not a minute of "Sunscreen"
        assert model.closed.wait(5)
        model.closed.clear()
