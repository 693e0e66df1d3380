"""The llama-server backend: a real llama-server, started and supervised by voxloop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from voxloop.config import Settings
from voxloop.errors import BackendDown
from voxloop.llm.llama_server import LlamaServerChat, default_binary
from voxloop.prompts import build_messages

pytestmark = pytest.mark.skipif(
    not default_binary().is_file(),
    reason=f"llama-server is not built at {default_binary()} (docs/benchmarks.md, llama-server)",
)

QUESTIONS = {"What is the capital of France?": "paris", "How many legs does a spider have?": "8"}


@pytest.fixture(scope="module")
def chat(settings: Settings) -> Iterator[LlamaServerChat]:
    """A supervised llama-server with two slots on the default model."""
    llm = settings.llm.model_copy(update={"parallel": 2, "temperature": 0.0})
    server = LlamaServerChat(llm, settings.cache_dir)
    yield server
    server.close()


def _reply(chat: LlamaServerChat, settings: Settings, question: str) -> str:
    messages = build_messages(settings.system_prompt, [], question)
    return "".join(chat.stream(messages, max_tokens=60)).lower()


def test_two_conversations_are_answered_at_once(chat: LlamaServerChat, settings: Settings) -> None:
    replies: dict[str, str] = {}
    threads = [
        threading.Thread(target=lambda q=q: replies.update({q: _reply(chat, settings, q)}))
        for q in QUESTIONS
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for question, expected in QUESTIONS.items():
        reply = replies[question].replace("eight", "8")
        assert expected in reply, f"{question!r} -> {replies[question]!r}"


def test_a_killed_server_is_restarted(chat: LlamaServerChat, settings: Settings) -> None:
    process = chat.process
    assert process is not None
    messages = build_messages(settings.system_prompt, [], "Count from one to one hundred.")
    pieces = chat.stream(messages, max_tokens=300)
    next(pieces)
    process.kill()  # dies mid-reply, as a crash would
    with pytest.raises(BackendDown):
        for _ in pieces:
            pass
    assert "paris" in _reply(chat, settings, "What is the capital of France?")
    assert chat.process is not None and chat.process.pid != process.pid


def test_close_stops_the_server(settings: Settings) -> None:
    server = LlamaServerChat(settings.llm.model_copy(update={"parallel": 1}), settings.cache_dir)
    process = server.process
    assert process is not None and process.poll() is None
    server.close()
    assert process.poll() is not None
