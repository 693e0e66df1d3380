"""Live turns before bulk work: the waiting count, the bulk thread's priority, and a real turn
counted as waited for until its first audio (the long recording side: tests/test_longform.py)."""

from __future__ import annotations

import math
import os
import threading
import time

import pytest

from voxloop import scheduling
from voxloop.pipeline import Pipeline
from voxloop.turns import Heard, Speech, TurnRequest


def test_bulk_work_waits_until_no_turn_waits() -> None:
    waiting = scheduling.Waiting()
    waiting.until_none(max_seconds=60)  # nobody waits: at once
    end = waiting.begin()
    released = threading.Event()
    bulk = threading.Thread(target=lambda: (waiting.until_none(60), released.set()))
    bulk.start()
    assert not released.wait(0.5) and waiting.count == 1
    end()
    end()  # ending twice counts once
    assert released.wait(10) and waiting.count == 0


def test_bulk_work_moves_on_after_its_longest_wait_or_when_cancelled() -> None:
    waiting = scheduling.Waiting()
    waiting.begin()  # a turn that never says it is done
    started = time.monotonic()
    waiting.until_none(max_seconds=0.3)
    assert time.monotonic() - started >= 0.3
    cancel = threading.Event()
    cancel.set()
    waiting.until_none(max_seconds=60, cancel=cancel)  # returns at once


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread priority is Linux's")
def test_bulk_work_runs_at_the_lowest_priority_and_hands_back_its_result() -> None:
    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert scheduling.in_background(priority) == scheduling.LOWEST_PRIORITY
    assert priority() != scheduling.LOWEST_PRIORITY  # the caller's own thread is untouched
    with pytest.raises(ZeroDivisionError):
        scheduling.in_background(lambda: 1 / 0)


def test_a_turn_is_waited_for_until_its_first_audio(pipeline: Pipeline) -> None:
    counts: list[tuple[type, int]] = []
    for event in pipeline.run(TurnRequest(text="What is the capital of France?")):
        counts.append((type(event), scheduling.waiting.count))
    assert next(count for kind, count in counts if kind is Heard) == 1
    assert next(count for kind, count in counts if kind is Speech) == 0
    # a turn stopped before any sound is no longer waited for either
    turn = pipeline.run(TurnRequest(text="Tell me about Paris."))
    assert isinstance(next(turn), Heard) and scheduling.waiting.count == 1
    turn.close()
    assert scheduling.waiting.count == 0


def test_a_models_context_goes_to_whoever_needs_it_soonest() -> None:
    turns, order, holding = scheduling.ModelTurns(), [], threading.Event()
    now = time.perf_counter()
    _hold(turns, now - 1, holding)  # a reply writing its first words
    _use(turns, "bulk", math.inf, order)
    _use(turns, "the rest of a reply heard for 5 s more", now + 5, order)
    _use(turns, "a new reply", now, order)
    _use(turns, "the rest of a reply about to run dry", now - 0.5, order)
    time.sleep(0.3)  # all four are in line
    # Ahead of its listener (due in 2 s), the holder yields; due since it was asked (no words
    # written yet), it yields to nobody who came later.
    assert turns.should_yield(now + 2, 0)
    assert not turns.should_yield(now - 1, 0)
    holding.clear()  # the holder lets go
    deadline = time.monotonic() + 10
    while len(order) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert order == [
        "the rest of a reply about to run dry",
        "a new reply",
        "the rest of a reply heard for 5 s more",
        "bulk",
    ]


def test_replies_due_at_once_go_first_come_first_served() -> None:
    turns, order, holding = scheduling.ModelTurns(), [], threading.Event()
    now = time.perf_counter()
    holder = _hold(turns, now, holding)
    _use(turns, "second", now, order)  # due as soon as the holder: it came later
    time.sleep(0.2)
    assert not turns.should_yield(now, 0)
    holding.clear()
    holder.join(10)
    deadline = time.monotonic() + 10
    while not order and time.monotonic() < deadline:
        time.sleep(0.01)
    assert order == ["second"]


def _hold(turns: scheduling.ModelTurns, due: float, holding: threading.Event) -> threading.Thread:
    """A thread holding the context (first in line) until `holding` clears."""

    def run() -> None:
        with turns.use(due, turns.arrival()):
            holding.set()
            while holding.is_set():
                time.sleep(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert holding.wait(10)
    return thread


def _use(turns: scheduling.ModelTurns, name: str, due: float, order: list[str]) -> None:
    """A thread that queues for the context and notes `name` in `order` when it gets it."""

    def run() -> None:
        with turns.use(due, turns.arrival()):
            order.append(name)

    threading.Thread(target=run, daemon=True).start()


def test_only_work_in_the_background_is_bulk() -> None:
    assert not scheduling.is_bulk()
    assert scheduling.in_background(scheduling.is_bulk)
