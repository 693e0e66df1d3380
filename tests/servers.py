"""Real servers on loopback for the tests: `voxloop serve`, llama.cpp's OpenAI-compatible
server, and an app served by uvicorn in a thread of the test process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from voxloop.errors import VoxloopError
from voxloop_bench import free_port, local_server

SERVER_START_SECONDS = 120


@contextmanager
def running_server(data_dir: Path, **env: str) -> Iterator[str]:
    """`voxloop serve` on a free loopback port; yields its URL once the models are loaded."""
    with serve_process(data_dir, **env) as (url, _process):
        yield url


@contextmanager
def serve_process(data_dir: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`voxloop serve` as `running_server`, with its process."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        try:
            url, process = stack.enter_context(local_server(data_dir, **env))
        except VoxloopError as err:  # it did not start: its log says why
            pytest.fail(str(err))
        yield f"{url}/", process


@contextmanager
def wyoming_server(data_dir: Path, **env: str) -> Iterator[int]:
    """`voxloop wyoming` on a free loopback port; yields the port once the models are loaded."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = data_dir / f"wyoming-{port}.log"
    command = [sys.executable, "-m", "voxloop.cli", "wyoming", "--uri", f"tcp://127.0.0.1:{port}"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, env={**os.environ, "VOXLOOP_DATA_DIR": str(data_dir), **env},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while "Wyoming server is ready" not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"voxloop wyoming did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.3)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def turn_events(url: str, **form: Any) -> list[dict[str, Any]]:
    """The server-sent events of one POST /v1/voxloop/turn (`file` goes as the upload)."""
    files = {"file": form.pop("file")} if "file" in form else None
    with httpx.stream(
        "POST", f"{url.rstrip('/')}/v1/voxloop/turn", data=form, files=files, timeout=120
    ) as response:
        assert response.status_code == 200, response.read()
        return [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]


class LlamaServer:
    """llama.cpp's OpenAI-compatible server (llama_cpp.server) on a loopback port."""

    alias = "qwen"

    def __init__(self, model: Path, port: int | None = None) -> None:
        self.model, self.port = model, port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The /v1 URL clients are given."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        """Start the server and wait until it answers."""
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048",
            "--n_threads", "2", "--model_alias", self.alias,
            # Its default cuts a running reply off when another request arrives: with several
            # replicas, one replica's prompt priming would end another's answer.
            "--interrupt_requests", "False",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.3)
        self.kill()
        pytest.fail("llama_cpp.server did not start")

    def kill(self) -> None:
        """End the server at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@contextmanager
def llama_server(model: Path) -> Iterator[LlamaServer]:
    """A started LlamaServer, killed at the end."""
    server = LlamaServer(model).start()
    try:
        yield server
    finally:
        server.kill()


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread of this process; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
