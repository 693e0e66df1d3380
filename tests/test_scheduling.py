"""Live turns before bulk work: the waiting count, the bulk thread's priority, and a real turn
counted as waited for until its first audio (the long recording side: tests/test_longform.py)."""

from __future__ import annotations

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
