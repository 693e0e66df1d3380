"""Language models: in-process llama.cpp and a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from voxloop import assets
from voxloop.config import Settings, load_settings
from voxloop.errors import BackendDown, ConfigError, ModelUnavailable
from voxloop.llm import get_chat_model
from voxloop.prompts import build_messages

QUESTION = "What is the capital of France?"
SERVER_START_SECONDS = 60


def _ask(settings: Settings, question: str = QUESTION, max_tokens: int = 60) -> list[str]:
    messages = build_messages(settings.system_prompt, [], question)
    return list(get_chat_model(settings).stream(messages, max_tokens=max_tokens))


def test_default_model_answers_a_fact(settings: Settings) -> None:
    pieces = _ask(settings)
    assert len(pieces) > 2, "the reply should stream in several pieces"
    assert "paris" in "".join(pieces).lower()


def _count_then_cancel(settings: Settings, after: int) -> list[str]:
    """Ask for a long reply and set the cancel flag once `after` pieces have arrived."""
    cancel = threading.Event()
    messages = build_messages(settings.system_prompt, [], "Count from one to one hundred.")
    pieces = []
    for piece in get_chat_model(settings).stream(messages, max_tokens=300, cancel=cancel):
        pieces.append(piece)
        if len(pieces) == after:
            cancel.set()
    return pieces


def test_cancel_stops_generation_early(settings: Settings) -> None:
    assert len(_count_then_cancel(settings, after=3)) == 3


def test_small_model_loads_and_replies() -> None:
    pieces = _ask(load_settings(llm={"model": "smollm2-135m"}), "Say hello.", max_tokens=20)
    assert "".join(pieces).strip()


def test_user_gguf_path_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a packaged model"):
        assets.gguf_path(str(tmp_path / "missing.gguf"), tmp_path)
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ModelUnavailable, match="not a GGUF"):
        assets.gguf_path(str(not_gguf), tmp_path)


def test_corrupted_packaged_model_is_reported_before_use(
    settings: Settings, tmp_path: Path
) -> None:
    good = assets.gguf_path("qwen2.5-0.5b", settings.cache_dir)
    cache = tmp_path / "cache"
    cache.mkdir()
    broken = cache / good.name
    shutil.copyfile(good, broken)
    with broken.open("r+b") as f:  # flip bytes in the middle of the weights
        f.seek(200_000_000)
        f.write(b"\x00" * 64)
    with pytest.raises(ModelUnavailable, match="corrupt"):
        assets.gguf_path("qwen2.5-0.5b", cache)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(settings: Settings) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server on loopback, serving the default model."""
    port = _free_port()
    model = assets.gguf_path("qwen2.5-0.5b", settings.cache_dir)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
            "--model_alias",
            "qwen",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("llama_cpp.server did not start")
    yield base_url
    process.terminate()
    process.wait(timeout=10)


def test_openai_backend_streams_from_a_real_server(llama_server: str) -> None:
    settings = load_settings(llm={"backend": "openai", "base_url": llama_server, "model": "qwen"})
    pieces = _ask(settings)
    assert len(pieces) > 2 and "paris" in "".join(pieces).lower()


def test_openai_backend_cancel(llama_server: str) -> None:
    settings = load_settings(llm={"backend": "openai", "base_url": llama_server, "model": "qwen"})
    assert len(_count_then_cancel(settings, after=2)) == 2


def test_unreachable_server_is_backend_down() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    settings = load_settings(llm={"backend": "openai", "base_url": url, "timeout_seconds": 2})
    with pytest.raises(BackendDown, match="Cannot reach"):
        _ask(settings)
