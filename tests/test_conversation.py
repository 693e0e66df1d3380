"""Conversations with the real models: memory, summaries of older turns, kinds of utterance."""

from __future__ import annotations

from pathlib import Path

from voxloop.config import MemorySettings, Settings
from voxloop.memory import Memory
from voxloop.pipeline import Pipeline
from voxloop.prompts import Utterance
from voxloop.turns import Done, Turn, TurnRequest


def _ask(pipeline: Pipeline, text: str, session: str | None = None) -> Turn:
    events = list(pipeline.run(TurnRequest(text=text, session=session)))
    done = events[-1]
    assert isinstance(done, Done)
    return done.turn


def test_older_turns_are_summarized_and_still_known(settings: Settings, tmp_path: Path) -> None:
    small = settings.model_copy(update={"memory": MemorySettings(history_tokens=60)})
    memory = Memory(tmp_path / "voxloop.db", small.memory)
    pipeline = Pipeline(small, memory)
    _ask(pipeline, "Please remember this: the secret word is banana.", "s")
    for filler in ("What is two plus two?", "Name a colour.", "What is the capital of Italy?"):
        _ask(pipeline, filler, "s")
    pipeline.wait_for_upkeep()
    recall = memory.recall("s")
    assert any(note.startswith("Summary") for note in recall.notes), recall
    assert "banana" not in str(recall.history)  # the first turn only lives in the summary
    assert "banana" in _ask(pipeline, "What is the secret word?", "s").reply.lower()


def test_a_cut_off_question_gets_a_question_back(pipeline: Pipeline) -> None:
    turn = _ask(pipeline, "What is the capital of")
    assert turn.kind is Utterance.UNCLEAR
    assert turn.reply.endswith("?") and "capital of" in turn.reply, turn.reply
    assert turn.spoken  # and it is said aloud like any reply


def test_asking_for_detail_lifts_the_length_limit(pipeline: Pipeline) -> None:
    short = _ask(pipeline, "How does a rainbow form?")
    detailed = _ask(pipeline, "Explain in detail how a rainbow forms.")
    assert short.kind is Utterance.QUESTION and detailed.kind is Utterance.DETAIL
    assert len(detailed.reply.split()) > 1.5 * len(short.reply.split()), (short, detailed)
