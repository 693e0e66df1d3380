"""llama.cpp's own `llama-server`, started and supervised by voxloop on a private loopback port.

Its parallel slots generate the replies of several conversations together (continuous
batching), where the in-process binding runs one at a time. voxloop talks to it through the
OpenAI-compatible chat model; this module only starts it, restarts it when it dies and stops
it when voxloop ends.
"""

from __future__ import annotations

import atexit
import ctypes
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from voxloop import assets
from voxloop.config import LLMSettings
from voxloop.errors import BackendDown, ModelUnavailable
from voxloop.llm import Message, Sampling, Usage, backends
from voxloop.llm.openai_compat import OpenAICompatChat

SERVER_NAME = "llama-server"
HOST = "127.0.0.1"
START_SECONDS = 120.0  # loading a large GGUF on a busy machine
HEALTH_POLL_SECONDS = 0.2
RESTART_PAUSE_SECONDS = 1.0  # between a death and the next start, so a crash loop stays cheap
STOP_SECONDS = 10.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h: the child gets a signal when its parent dies


def default_binary() -> Path:
    """Where setup builds llama-server: beside this interpreter, in the virtual environment."""
    return Path(sys.prefix) / "bin" / SERVER_NAME


def _free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: be stopped even if voxloop is killed without cleaning up."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class LlamaServerChat:
    """A supervised llama-server with `settings.parallel` slots, serving `settings.model`."""

    keeps_prefix = False  # the next request may go to another slot

    def __init__(self, settings: LLMSettings, cache_dir: Path) -> None:
        self.settings = settings
        chosen = settings.server_binary
        self.binary = Path(chosen).expanduser() if chosen else default_binary()
        if not self.binary.is_file():
            raise ModelUnavailable(
                f"llama-server is not built at {self.binary}: build it (docs/benchmarks.md, "
                "llama-server) or set llm.server_binary to its path, or use llm.backend "
                "'llamacpp'."
            )
        self.model_path = assets.gguf_path(settings.model, cache_dir)
        self.process: subprocess.Popen[bytes] | None = None
        self.chat: OpenAICompatChat | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._first_try = threading.Event()
        self._lock = threading.Lock()
        # The supervisor thread starts every server: the kernel stops a child when the thread
        # that started it ends (PR_SET_PDEATHSIG), and a request thread may end any time.
        supervisor = threading.Thread(target=self._supervise, name=SERVER_NAME, daemon=True)
        supervisor.start()
        self._first_try.wait()
        if not self._ready.is_set():
            self.close()
            raise ModelUnavailable(
                f"llama-server did not start serving {self.model_path} within {START_SECONDS:g} s."
            )
        atexit.register(self.close)

    def _command(self, port: int) -> list[str]:
        """The llama-server command line: one context of `context_tokens` per slot."""
        slots = self.settings.parallel
        return [
            str(self.binary),
            "--model", str(self.model_path),
            "--host", HOST,
            "--port", str(port),
            "--parallel", str(slots),
            "--ctx-size", str(self.settings.context_tokens * slots),
            "--threads", str(self.settings.threads),
            "--cont-batching",
            "--no-webui",
            "--log-disable",
        ]  # fmt: skip

    def _start(self) -> None:
        """Start a fresh server on a fresh private port; the chat client follows it."""
        port = _free_port()
        with self._lock:
            if self._stopping.is_set():  # close() came first: start nothing it would miss
                return
            self._ready.clear()
            self.process = subprocess.Popen(
                self._command(port),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
            self.base_url = f"http://{HOST}:{port}"
            self.chat = OpenAICompatChat(
                self.settings.model_copy(update={"base_url": f"{self.base_url}/v1"})
            )

    def _wait_healthy(self) -> bool:
        """Poll /health until the model is loaded; False if the server died or took too long."""
        deadline = time.monotonic() + START_SECONDS
        process = self.process
        while time.monotonic() < deadline and not self._stopping.is_set():
            if process is None or process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code == 200:
                    self._ready.set()
                    return True
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(HEALTH_POLL_SECONDS)
        return False

    def _supervise(self) -> None:
        """Start the server, and again whenever it dies, until voxloop stops it."""
        while not self._stopping.is_set():
            self._start()
            self._wait_healthy()
            self._first_try.set()
            if self.process is not None:
                self.process.wait()
            self._ready.clear()  # requests from now on wait for the new server
            self._stopping.wait(RESTART_PAUSE_SECONDS)

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        cancel: threading.Event | None = None,
        sampling: Sampling | None = None,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        """Yield reply pieces from the server, waiting for it first if it is restarting."""
        chat = self._serving()
        replied = False
        try:
            for piece in chat.stream(
                messages, max_tokens=max_tokens, cancel=cancel, sampling=sampling, usage=usage
            ):
                replied = True
                yield piece
        except BackendDown:
            if replied:  # half a reply is already out: the turn apologizes instead
                raise
            # It died since it was last seen healthy: ask the one its supervisor starts next.
            retry = self._serving(instead_of=chat)
            yield from retry.stream(
                messages, max_tokens=max_tokens, cancel=cancel, sampling=sampling, usage=usage
            )

    def _serving(self, instead_of: OpenAICompatChat | None = None) -> OpenAICompatChat:
        """The client of a loaded server (not `instead_of`), waiting up to timeout_seconds."""
        deadline = time.monotonic() + self.settings.timeout_seconds
        while time.monotonic() < deadline and not self._stopping.is_set():
            with self._lock:
                chat = self.chat
            if self._ready.is_set() and chat is not None and chat is not instead_of:
                return chat
            self._ready.wait(HEALTH_POLL_SECONDS)
        raise BackendDown(
            f"The language model server (llama-server) is not serving after "
            f"{self.settings.timeout_seconds:g} s; voxloop keeps restarting it."
        )

    def close(self) -> None:
        """Stop the server and its supervision (also run when the Python process ends)."""
        with self._lock:
            self._stopping.set()
            self._ready.clear()
            process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@backends.register("llama-server")
def _build(settings: LLMSettings, cache_dir: Path) -> LlamaServerChat:
    return LlamaServerChat(settings, cache_dir)
