"""Facts the person states about themselves, found by patterns."""

from __future__ import annotations

import pytest

from voxloop.facts import extract


@pytest.mark.parametrize(
    ("said", "fact"),
    [
        ("My name is Ada.", "The user's name is Ada."),
        ("Call me Ada.", "The user's name is Ada."),
        ("I'm vegetarian.", "The user is vegetarian."),
        ("Call me in the morning.", "The user wants you to call them in the morning."),
        ("I live in Lyon with my sister.", "The user lives in Lyon with their sister."),
        ("My favourite colour is green.", "The user's favourite colour is green."),
        ("I don't eat pork.", "The user doesn't eat pork."),
        ("I study physics.", "The user studies physics."),
        ("Remember that my cat is called Tom.", "The user's cat is called Tom."),
    ],
)
def test_stated_facts_are_rewritten_about_the_user(said: str, fact: str) -> None:
    assert [f.text for f in extract(said)] == [fact]


@pytest.mark.parametrize(
    "said",
    [
        "What is my name?",
        "I have a question.",
        "I'm a bit tired.",
        "My question is simple.",
        "If I lived in Paris I would walk more.",
        "What is the capital of France?",
    ],
)
def test_questions_and_passing_remarks_state_no_fact(said: str) -> None:
    assert extract(said) == []


def test_a_newer_statement_has_the_same_key_as_the_one_it_replaces() -> None:
    (paris,) = extract("I live in Paris.")
    (rome,) = extract("I live in Rome.")
    assert paris.key == rome.key and paris.text != rome.text


def test_several_facts_in_one_utterance() -> None:
    texts = [f.text for f in extract("Hello. My name is Ada. I'm vegetarian.")]
    assert texts == ["The user's name is Ada.", "The user is vegetarian."]


def test_facts_in_clauses_of_one_sentence() -> None:
    texts = [f.text for f in extract("My name is Ada, and I am vegetarian.")]
    assert texts == ["The user's name is Ada.", "The user is vegetarian."]
