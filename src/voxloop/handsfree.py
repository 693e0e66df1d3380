"""Hands-free in the page: its WebSocket as a door to the conversation engine.

One HandsFree per page. The page streams 16 kHz int16 microphone frames over its WebSocket to
a Conversation (conversation/); this adapter turns the conversation's events into the page's
messages and audio, and keeps the chat the page shows.
"""

from __future__ import annotations

import threading
from typing import Any

from voxloop.conversation import (
    Conversation,
    Event,
    Failed,
    Options,
    ReplyAudio,
    ReplyDone,
    ReplyInterrupted,
    ReplyStarted,
    ReplyWritten,
    StateChanged,
    TranscriptUpdated,
)
from voxloop.live import LiveSessions
from voxloop.pipeline import Pipeline

__all__ = ["HandsFree", "Options"]


class HandsFree:
    """One page's hands-free conversation, fed with microphone audio by the server."""

    def __init__(
        self, pipeline: Pipeline, live: LiveSessions, client_id: str, options: Options
    ) -> None:
        self.live = live
        self.client_id = client_id
        self.chat: list[dict[str, str]] = []
        self.version = 0  # bumped on every change of `chat` or `timings`, for the page to poll
        # (turn number, stage timings in ms) of each finished turn, for the latency plot
        self.timings: list[tuple[int, dict[str, float]]] = []
        self._lock = threading.Lock()  # the chat changes from the listening and answer threads
        self.conversation = Conversation(
            pipeline,
            options,
            self._on_event,
            session=lambda: live.get(client_id).session,
            begin_turn=lambda: live.begin_turn(client_id),
        )

    def feed(self, pcm16: bytes) -> None:
        """Queue microphone audio (int16 mono 16 kHz); returns at once."""
        self.conversation.feed_pcm16(pcm16)

    def announce(self, text: str, seconds: float) -> None:
        """Show an alert voxloop speaks on its own (a timer, `seconds` of audio) in the chat;
        the conversation keeps its words for the echo filter."""
        self._add_to_chat({"role": "assistant", "content": text})
        self.conversation.announce(text, seconds)

    def close(self, wait_seconds: float | None = None) -> None:
        """End the conversation: stop listening (after what was fed) and any answer."""
        self.conversation.close(wait_seconds)
        self.live.stop(self.client_id)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, StateChanged):
            self._send({"type": "state", "value": event.value})
        elif isinstance(event, TranscriptUpdated):
            self._send({"type": "partial", "text": event.text})
        elif isinstance(event, ReplyStarted):
            user = {"role": "user", "content": event.user_text}
            self._add_to_chat(user, {"role": "assistant", "content": event.written})
        elif isinstance(event, ReplyWritten):
            self._extend_last_message(event.delta)
        elif isinstance(event, ReplyAudio):
            self._play(event)
        elif isinstance(event, ReplyDone):
            self._add_timings(event.turn, event.record.timings_ms)
        elif isinstance(event, ReplyInterrupted):
            self.live.stop(self.client_id)  # the page silences what it still plays
            self._add_to_chat({"role": "assistant", "content": event.heard}, replace_last=True)
            self._send({"type": "state", "value": "interrupted"})
        elif isinstance(event, Failed):
            self._send({"type": "error", "message": event.message})
            if event.shown:
                self._extend_last_message(f"⚠️ {event.message}")

    def _play(self, audio: ReplyAudio) -> None:
        if audio.latency_ms is not None:  # the first piece
            self.live.start_reply(self.client_id, audio.turn, audio.chunk.sample_rate)
            speaking = {"type": "state", "value": "speaking", "latency_ms": round(audio.latency_ms)}
            self._send(speaking)
        self.live.send_audio(self.client_id, audio.turn, audio.chunk)

    def _add_to_chat(self, *messages: dict[str, str], replace_last: bool = False) -> None:
        with self._lock:
            self.chat = [*self.chat[: -1 if replace_last else None], *messages]
            self.version += 1

    def _add_timings(self, turn: int, timings_ms: dict[str, float]) -> None:
        with self._lock:
            self.timings = [*self.timings, (turn, dict(timings_ms))]
            self.version += 1

    def _extend_last_message(self, text: str) -> None:
        with self._lock:
            last = self.chat[-1]
            extended = {"role": last["role"], "content": last["content"] + text}
            self.chat = [*self.chat[:-1], extended]
            self.version += 1

    def _send(self, message: dict[str, Any]) -> None:
        self.live.send_json(self.client_id, message)
