"""Timers that go off: announced through every door the person is at (the page, hands-free,
the API's event stream), or at the start of their next turn if nobody was there to hear.

Doors register with `Alarms.add_door`; a timer is rung once (compare-and-set in memory), so two
server processes sharing one store never announce it twice.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from voxloop.audio import join_chunks
from voxloop.memory import Memory, Timer
from voxloop.skills.timers import alert_text

if TYPE_CHECKING:
    from voxloop.live import LiveSessions
    from voxloop.pipeline import Pipeline

log = logging.getLogger("voxloop.alarms")


class Door(Protocol):
    """A way to reach people: the page's sockets, an API event stream."""

    def listening(self, session: str) -> bool:
        """Whether someone of `session` is there to hear an alert now."""
        ...

    def deliver(self, timer: Timer, text: str) -> None:
        """Tell the person that `timer` went off, saying `text`."""
        ...


class Alarms:
    """Looks for due timers in the background and rings them through the doors."""

    def __init__(self, memory: Memory, poll_seconds: float) -> None:
        self.memory = memory
        self.poll_seconds = poll_seconds
        self._doors: list[Door] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_door(self, door: Door) -> None:
        """Announce alerts through `door` too."""
        self._doors.append(door)

    def start(self) -> None:
        """Start watching (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="voxloop-alarms", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()

    def ring_due(self, now: float) -> list[Timer]:
        """Ring every due timer someone is there to hear; returns the ones rung."""
        rung = []
        for timer in self.memory.due_timers(now):
            doors = [door for door in self._doors if door.listening(timer.session)]
            if not doors or not self.memory.ring(timer.id):
                continue  # nobody to hear it (said at their next turn), or rung elsewhere
            text = alert_text(timer)
            for door in doors:
                try:
                    door.deliver(timer, text)
                except Exception:  # one broken door must not keep the others silent
                    log.exception("announcing a timer failed")
            rung.append(timer)
        return rung

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.ring_due(time.time())
            except Exception:  # e.g. the store is briefly locked: try again next time
                log.exception("checking timers failed")


class PageDoor:
    """The person's open pages: the alert is spoken through the page's socket (cutting off
    whatever it was saying, as an alarm does) and shown in its status line."""

    def __init__(self, live: LiveSessions, pipeline: Pipeline) -> None:
        self.live = live
        self.pipeline = pipeline

    def listening(self, session: str) -> bool:
        """Whether a page of `session` is open."""
        return bool(self.live.clients_of(session))

    def deliver(self, timer: Timer, text: str) -> None:
        """Say `text` in every open page of the timer's person."""
        speech = join_chunks(list(self.pipeline.speak(text)))
        for client_id in self.live.clients_of(timer.session):
            turn, _cancel = self.live.begin_turn(client_id)
            self.live.send_json(client_id, {"type": "alert", "text": text, "timer": timer.id})
            self.live.start_reply(client_id, turn, speech.sample_rate)
            self.live.send_audio(client_id, turn, speech)
            conversation = self.live.get(client_id).handsfree
            if conversation is not None:
                conversation.announce(text, speech.seconds)


class StreamDoor:
    """Programs listening on `GET /v1/voxloop/events`: each gets the alert as an event with its
    spoken audio (base64 16-bit mono PCM)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._listeners: dict[str, list[queue.Queue[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def subscribe(self, session: str) -> queue.Queue[dict[str, Any]]:
        """A queue that receives `session`'s alerts until `unsubscribe`."""
        events: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._lock:
            self._listeners.setdefault(session, []).append(events)
        return events

    def unsubscribe(self, session: str, events: queue.Queue[dict[str, Any]]) -> None:
        """Stop sending alerts to `events`."""
        with self._lock:
            listeners = self._listeners.get(session, [])
            if events in listeners:
                listeners.remove(events)

    def listening(self, session: str) -> bool:
        """Whether a program listens for `session`'s alerts."""
        with self._lock:
            return bool(self._listeners.get(session))

    def deliver(self, timer: Timer, text: str) -> None:
        """Queue the alert, with its audio, for every listener of the timer's session."""
        speech = join_chunks(list(self.pipeline.speak(text)))
        event = {
            "type": "timer", "id": timer.id, "kind": timer.kind, "label": timer.label,
            "seconds": timer.seconds, "text": text, "sample_rate": speech.sample_rate,
            "pcm_s16le": base64.b64encode(speech.pcm.astype("<i2").tobytes()).decode(),
        }  # fmt: skip
        with self._lock:
            listeners = list(self._listeners.get(timer.session, []))
        for events in listeners:
            events.put(event)
