"""The llama-server backend: a real llama-server, started and supervised by voxloop."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxloop.config import Settings, load_settings
from voxloop.errors import BackendDown
from voxloop.llm import get_chat_model
from voxloop.llm.llama_server import LlamaServerChat, default_binary
from voxloop.prompts import build_messages

pytestmark = pytest.mark.skipif(
    not default_binary().is_file(),
    reason=f"llama-server is not built at {default_binary()} (docs/benchmarks.md, llama-server)",
)

QUESTIONS = {
    "What is the capital of France?": "paris",
    "What color is the sky on a clear day?": "blue",
}


@pytest.fixture(scope="module")
def chat(settings: Settings) -> Iterator[LlamaServerChat]:
    """A supervised llama-server with two slots on the default model, chosen by name."""
    llm = {"backend": "llama-server", "parallel": 2, "threads": 1, "temperature": 0.0}
    server = get_chat_model(load_settings(data_dir=settings.data_dir, llm=llm))
    assert isinstance(server, LlamaServerChat)
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
        assert expected in replies[question], f"{question!r} -> {replies[question]!r}"


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
    server = LlamaServerChat(
        settings.llm.model_copy(update={"parallel": 1, "threads": 1}), settings.cache_dir
    )
    process = server.process
    assert process is not None and process.poll() is None
    server.close()
    assert process.poll() is not None


STOPS_WITH_PARENT_SECONDS = 30
_KILLED_PARENT = """
import os, signal, sys
from pathlib import Path
from voxloop.config import load_settings
from voxloop.llm import get_chat_model
from voxloop.llm.llama_server import LlamaServerChat
settings = load_settings()
chat = LlamaServerChat(settings.llm.model_copy(update={"threads": 1}), settings.cache_dir)
print(chat.process.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no close(): as if voxloop crashed
"""


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie is not)."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "\nState:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False


def test_server_stops_when_voxloop_is_killed() -> None:
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_PARENT], capture_output=True, text=True, timeout=180
    )
    server_pid = int(child.stdout.split()[0])
    deadline = time.monotonic() + STOPS_WITH_PARENT_SECONDS
    while _running(server_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(server_pid), "llama-server outlived the voxloop process that started it"
