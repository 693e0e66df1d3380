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


def test_a_models_context_goes_to_first_words_then_the_rest_then_bulk() -> None:
    turns, order, holding = scheduling.ModelTurns(), [], threading.Event()
    first = turns.arrival()
    holder = _hold(turns, first, holding)
    bulk = _use(turns, "bulk", scheduling.Need.BULK, order)
    paused = _use(turns, "rest of an earlier reply", scheduling.Need.REST, order)
    newer = _use(turns, "first words of a new reply", scheduling.Need.FIRST_WORDS, order)
    time.sleep(0.3)  # all three are in line
    # The holder, past its first sentence, yields to the new reply's first words; a bulk user
    # yields even to the rest of a reply; a reply still in its first sentence yields to nobody.
    assert turns.should_yield(scheduling.Need.REST, first)
    assert turns.should_yield(scheduling.Need.BULK, first)
    assert not turns.should_yield(scheduling.Need.FIRST_WORDS, first)
    holding.clear()  # the holder lets go
    for thread in (holder, bulk, paused, newer):
        thread.join(10)
    assert order == ["first words of a new reply", "rest of an earlier reply", "bulk"]


def test_a_later_reply_past_its_first_words_yields_to_an_earlier_ones_rest() -> None:
    turns, order, holding = scheduling.ModelTurns(), [], threading.Event()
    earlier, later = turns.arrival(), turns.arrival()
    holder = _hold(turns, later, holding)  # let in ahead of the earlier one for its first words
    waiter = _use(turns, "earlier", scheduling.Need.REST, order, arrival=earlier)
    time.sleep(0.2)
    assert turns.should_yield(scheduling.Need.REST, later)  # first come, first served now
    assert not turns.should_yield(scheduling.Need.REST, earlier - 1)
    holding.clear()
    for thread in (holder, waiter):
        thread.join(10)
    assert order == ["earlier"]


def _hold(turns: scheduling.ModelTurns, arrival: int, holding: threading.Event) -> threading.Thread:
    """A thread holding the context (as a reply in its first sentence) until `holding` clears."""

    def run() -> None:
        with turns.use(scheduling.Need.FIRST_WORDS, arrival):
            holding.set()
            while holding.is_set():
                time.sleep(0.01)

    thread = threading.Thread(target=run)
    thread.start()
    assert holding.wait(10)
    return thread


def _use(
    turns: scheduling.ModelTurns,
    name: str,
    need: scheduling.Need,
    order: list[str],
    arrival: int | None = None,
) -> threading.Thread:
    """A thread that queues for the context and notes `name` in `order` when it gets it."""

    def run() -> None:
        with turns.use(need, turns.arrival() if arrival is None else arrival):
            order.append(name)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_only_work_in_the_background_is_bulk() -> None:
    assert not scheduling.is_bulk()
    assert scheduling.in_background(scheduling.is_bulk)
