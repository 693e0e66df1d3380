"""How each utterance is answered: the kinds, the hints and the clarifying question."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from voxloop.config import load_settings
from voxloop.llm import Message
from voxloop.prompts import (
    DEFAULT_SYSTEM_PROMPT,
    Utterance,
    build_messages,
    clarifying_question,
    classify,
    with_hint,
)


@pytest.mark.parametrize(
    ("said", "kind"),
    [
        ("What is the capital of France?", Utterance.QUESTION),
        ("Why?", Utterance.QUESTION),
        ("Hello.", Utterance.QUESTION),
        ("Where are you from?", Utterance.QUESTION),
        ("What is the capital of", Utterance.UNCLEAR),
        ("Tell me about the", Utterance.UNCLEAR),
        ("Paris", Utterance.UNCLEAR),
        # whole questions that end on a word a cut-off sentence also ends on
        ("What is water made of?", Utterance.QUESTION),
        ("What are you afraid of?", Utterance.QUESTION),
        ("Can you tell me what a neutron star is?", Utterance.QUESTION),
        ("Do you know where my keys are?", Utterance.QUESTION),
        # ... and cut-off ones that look like them
        ("What time is", Utterance.UNCLEAR),
        ("Tell me what is", Utterance.UNCLEAR),
        ("In which country are", Utterance.UNCLEAR),
        ("The capital of France is", Utterance.UNCLEAR),
        ("Explain in detail how a rainbow forms.", Utterance.DETAIL),
        ("Can you tell me more about the moon?", Utterance.DETAIL),
        ("Walk me through it step by step.", Utterance.DETAIL),
    ],
)
def test_kinds_of_utterance(said: str, kind: Utterance) -> None:
    assert classify(said) is kind


def test_every_written_question_is_answered_and_most_halves_are_asked_back() -> None:
    """The answers bench's 200 questions (`voxloop bench answers`) are all answered, none asked
    back; cut after their middle word, 79 stop where a sentence cannot end."""
    from voxloop_bench import data_file

    questions = json.loads(data_file("answers/questions.json").read_text())["questions"]
    said = [q["question"] for q in questions]
    assert [q for q in said if classify(q) is Utterance.UNCLEAR] == []
    halves = [" ".join(q.split()[: max(2, len(q.split()) // 2)]) for q in said]
    assert sum(classify(half) is Utterance.UNCLEAR for half in halves) >= 79


def test_a_single_word_answers_a_question_within_a_conversation() -> None:
    assert classify("Paris.", in_conversation=True) is Utterance.QUESTION
    assert classify("What is the capital of", in_conversation=True) is Utterance.UNCLEAR


def test_only_unusual_kinds_add_words_to_evaluate() -> None:
    assert with_hint("What time is it?", Utterance.QUESTION) == "What time is it?"
    assert "detailed" in with_hint("Explain in detail.", Utterance.DETAIL)


def test_clarifying_questions_repeat_what_was_heard() -> None:
    assert clarifying_question("What is the capital of").endswith("What would you like to know?")
    assert "“Paris”" in clarifying_question("Paris.")


def test_notes_go_into_the_system_prompt() -> None:
    messages = build_messages("Be brief.", [], "Hi.", ["What you know about the user: Ada."])
    assert messages[0]["content"] == "Be brief.\n\nWhat you know about the user: Ada."
    assert messages[-1] == {"role": "user", "content": "Hi."}


def test_a_reply_cut_off_before_any_word_is_not_shown_to_the_model() -> None:
    history: list[Message] = [
        {"role": "user", "content": "What is two plus two?"},
        {"role": "assistant", "content": "…"},  # interrupted before the person heard a word
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": "Why did the …"},  # heard in part: kept
    ]
    messages = build_messages("Be brief.", history, "What is three plus three?")
    assert [m["content"] for m in messages[1:]] == [
        "What is two plus two?",
        "Tell me a joke.",
        "Why did the …",
        "What is three plus three?",
    ]


def test_the_prompt_texts_load_before_anything_else_of_voxloop() -> None:
    # config.py takes its default persona from prompts.py: importing either first must work.
    for module in ("voxloop.config", "voxloop.prompts"):
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    assert load_settings().system_prompt == DEFAULT_SYSTEM_PROMPT
    assert build_messages(DEFAULT_SYSTEM_PROMPT, [], "Hi.")[0]["content"] == DEFAULT_SYSTEM_PROMPT
