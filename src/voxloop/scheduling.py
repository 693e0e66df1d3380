"""Who goes first on a shared CPU: a person waiting for an answer, before bulk work.

Bulk work (a long recording's transcription and summary) runs in a thread of its own at the
lowest CPU priority, which the language model's worker threads it starts inherit, and between
its steps it waits while any turn is still waiting for its first audio. Live turns then get
the cores when they need them most, and bulk work takes what is left.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

LOWEST_PRIORITY = 19  # Linux nice value: runs only when nothing else wants the core
# No first answer takes this long: a turn still "waiting" was abandoned without being closed.
STALE_SECONDS = 60.0
CHECK_SECONDS = 0.1  # how often a waiting bulk step looks at `cancel`


class Waiting:
    """The turns that wait for their first audio; bulk work waits until none does."""

    def __init__(self) -> None:
        self._since: dict[int, float] = {}  # turn -> when it began waiting (monotonic)
        self._next = 0
        self._changed = threading.Condition()

    @property
    def count(self) -> int:
        """Turns waiting for their first audio now (a turn stuck longer than STALE_SECONDS,
        abandoned without being closed, is not counted)."""
        oldest = time.monotonic() - STALE_SECONDS
        with self._changed:
            return sum(since > oldest for since in self._since.values())

    def begin(self) -> Callable[[], None]:
        """Count a turn as waiting; call the returned function (any number of times) when its
        first audio is out or it ended without any."""
        with self._changed:
            self._next += 1
            turn = self._next
            self._since[turn] = time.monotonic()

        def end() -> None:
            with self._changed:
                if self._since.pop(turn, None) is not None:
                    self._changed.notify_all()

        return end

    def until_none(self, max_seconds: float, cancel: threading.Event | None = None) -> None:
        """Return once no turn waits, after `max_seconds` at most (bulk work must still move on
        a busy server), or at once when `cancel` is set."""
        deadline = time.monotonic() + max_seconds
        while self.count > 0 and not (cancel is not None and cancel.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with self._changed:  # woken when a turn's wait ends; a short timeout sees `cancel`
                self._changed.wait(min(left, CHECK_SECONDS))


waiting = Waiting()  # one per process: the cores are the process's
_bulk = threading.local()  # .active: this thread does bulk work (set by `in_background`)


def is_bulk() -> bool:
    """Whether the calling thread does bulk work (runs `in_background`)."""
    return getattr(_bulk, "active", False)


class ModelTurns:
    """Who uses a model's one context next, for model backends that write one reply at a time:
    whoever needs it soonest (`due`, a time.perf_counter() value), first come first served
    among equals.

    A new reply is due at once (a person waits for its first words); a reply already being
    heard is due shortly before its listener will have heard what it has written; bulk work is
    never due. Where the context is shared (`llm.share_context`), the holder asks
    `should_yield` after each token and, if told to, lets go and queues again with the rest of
    its reply (the backend keeps its part of the context, so it goes on without evaluating
    anything again): a turn arriving while another reply is being written then waits for one
    token of it, not for the whole of it. Otherwise a holder keeps the context to its reply's
    end, and this only orders who waits.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._busy = False
        self._waiting: list[tuple[float, int]] = []  # (due, arrival), a heap: soonest first
        self._arrivals = itertools.count()

    def arrival(self) -> int:
        """A new reply's place in line: it keeps it when it queues again for its rest."""
        return next(self._arrivals)

    @contextlib.contextmanager
    def use(self, due: float, arrival: int) -> Iterator[None]:
        """Hold the context, once everyone due sooner has had it."""
        place = (due, arrival)
        with self._changed:
            heapq.heappush(self._waiting, place)
            while self._busy or self._waiting[0] != place:
                self._changed.wait()
            heapq.heappop(self._waiting)
            self._busy = True
        try:
            yield
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()

    def should_yield(self, due: float, arrival: int) -> bool:
        """Whether someone waits who is due sooner than the holder, now due at `due`."""
        with self._changed:
            return bool(self._waiting) and self._waiting[0] < (due, arrival)


def lower_priority(thread_ids: set[int] | None = None) -> None:
    """Give threads (default: the calling one) the lowest CPU priority; Linux only (nice is
    per thread there), elsewhere nothing happens."""
    for thread_id in thread_ids if thread_ids is not None else {threading.get_native_id()}:
        # A thread that is gone already, or a refusal, only costs speed.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, thread_id, LOWEST_PRIORITY)


def in_background(work: Callable[..., T], *args: Any) -> T:
    """`work(*args)` in a new thread at the lowest CPU priority; waits for it and returns its
    result or raises its error (a thread of its own, since a thread cannot raise its priority
    back once lowered)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        lower_priority()
        _bulk.active = True
        try:
            outcome["result"] = work(*args)
        except BaseException as err:  # handed to the caller's thread as it was raised
            outcome["error"] = err

    thread = threading.Thread(target=run, name="voxloop-bulk", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


class Relay(Generic[T]):
    """Items made in one thread, read as they come in another; an error raised while making
    them is raised again where they are read."""

    def __init__(self) -> None:
        self._items: queue.Queue[T | BaseException | None] = queue.Queue()

    def put(self, item: T) -> None:
        """Hand over one item now."""
        self._items.put(item)

    def pump(self, items: Iterable[T]) -> None:
        """Hand over every item of `items` (in the making thread), then the end."""
        try:
            for item in items:
                self._items.put(item)
        except BaseException as err:  # raised again in the reading thread
            self._items.put(err)
        finally:
            self._items.put(None)

    def __iter__(self) -> Iterator[T]:
        while (item := self._items.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
