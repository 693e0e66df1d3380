"""Live browser sessions: the WebSocket that carries reply audio, and each turn's cancel flag.

A page opens one WebSocket with its client id; the Gradio handlers of that page run in worker
threads and push audio through here. Starting a turn cancels the session's previous one.
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket

from voxloop.audio import AudioChunk

SEND_TIMEOUT_SECONDS = 5.0
KEPT_RECORDINGS = 4  # stopped recordings waiting for their turn, per page


@dataclass
class LiveSession:
    """One page: its socket (when connected) and the turn in progress."""

    socket: WebSocket | None = None
    loop: asyncio.AbstractEventLoop | None = None
    turn: int = 0
    cancel: threading.Event = field(default_factory=threading.Event)
    handsfree: Any = None  # the HandsFree conversation, while one is running
    session: str | None = None  # the person (memory) this page belongs to
    # The record button's recording, streamed while it records (recording_stream.py), and
    # the stopped ones whose turn has not taken their transcript yet, oldest first.
    recording: Any = None
    recorded: deque[Any] = field(default_factory=lambda: deque(maxlen=KEPT_RECORDINGS))


class LiveSessions:
    """Client id -> LiveSession, shared by the WebSocket endpoint and the UI handlers."""

    def __init__(self) -> None:
        self._sessions: dict[str, LiveSession] = {}
        self._lock = threading.Lock()

    def get(self, client_id: str) -> LiveSession:
        """The session of `client_id`, created on first use."""
        with self._lock:
            return self._sessions.setdefault(client_id, LiveSession())

    def connected_count(self) -> int:
        """How many pages have their audio socket open."""
        with self._lock:
            return sum(1 for session in self._sessions.values() if session.socket is not None)

    def connected(self, client_id: str) -> bool:
        """Whether the page of `client_id` has its audio socket open."""
        return self.get(client_id).socket is not None

    async def attach(self, client_id: str, socket: WebSocket) -> None:
        """Remember the page's socket (called by the endpoint, in the event loop)."""
        session = self.get(client_id)
        session.socket, session.loop = socket, asyncio.get_running_loop()

    def detach(self, client_id: str, socket: WebSocket) -> None:
        """Forget a closed socket and stop whatever it was being sent."""
        session = self.get(client_id)
        if session.socket is socket:
            session.socket = None
            session.cancel.set()

    def begin_turn(
        self, client_id: str, cancel: threading.Event | None = None
    ) -> tuple[int, threading.Event]:
        """Cancel the running turn, start a new one (stopped by `cancel`, else by a new flag):
        (turn number, its cancel flag)."""
        session = self.get(client_id)
        session.cancel.set()
        session.turn += 1
        session.cancel = cancel or threading.Event()
        return session.turn, session.cancel

    def stop(self, client_id: str) -> None:
        """Stop the running turn and silence its audio in the page."""
        session = self.get(client_id)
        session.cancel.set()
        self.send_json(client_id, {"type": "stop", "turn": session.turn})

    def send_json(self, client_id: str, message: dict[str, Any]) -> None:
        """Send a control message to the page."""
        self._send(self.get(client_id), json.dumps(message))

    def start_reply(self, client_id: str, turn: int, sample_rate: int) -> None:
        """Tell the page a reply of `turn` starts (it drops audio of older turns)."""
        self.send_json(client_id, {"type": "reply", "turn": turn, "sample_rate": sample_rate})

    def send_audio(self, client_id: str, turn: int, chunk: AudioChunk) -> None:
        """Send one chunk of `turn`'s reply as [u32 turn][int16 PCM]."""
        self._send(self.get(client_id), struct.pack("<I", turn) + chunk.pcm.tobytes())

    def clients_of(self, person: str) -> list[str]:
        """The client ids of the pages of `person` that have their socket open."""
        with self._lock:
            return [
                client_id
                for client_id, session in self._sessions.items()
                if session.session == person and session.socket is not None
            ]

    def _send(self, session: LiveSession, message: str | bytes) -> None:
        socket, loop = session.socket, session.loop
        if socket is None or loop is None:
            return
        send = socket.send_text(message) if isinstance(message, str) else socket.send_bytes(message)
        future = asyncio.run_coroutine_threadsafe(send, loop)
        try:
            future.result(timeout=SEND_TIMEOUT_SECONDS)
        except Exception:  # the page went away mid-send: nothing is listening any more
            session.socket = None
