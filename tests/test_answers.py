"""Right answers: held-out everyday questions through the real pipeline, and the bench's judge."""

from __future__ import annotations

from collections import Counter

import pytest

from voxloop.config import Settings
from voxloop.pipeline import Pipeline
from voxloop.turns import Done, TurnRequest
from voxloop_bench.answers import (
    UNKNOWABLE,
    Question,
    canonical_words,
    judge,
    load_questions,
)

HELD_OUT = {q.id: q for q in load_questions("heldout")}
# One held-out question per category (picked after the runs: tests guard, they do not tune).
HELD_OUT_IDS_FOR_TESTS = [
    "animals-03",  # a baby cat: kitten
    "body-09",  # the skull protects the brain
    "science-06",  # gold: Au
    "geography-06",  # Rome
    "history-06",  # Shakespeare
    "counts-15",  # a hexagon's six sides
    "definitions-18",  # a baker makes bread
    "arithmetic-06",  # 20 / 4 = 5 (a skill, in front of the model)
    "advice-12",  # less stress: breathe, exercise, sleep...
]


def test_the_question_set_is_broad_and_split_by_its_fixed_rule() -> None:
    questions = load_questions()
    categories = Counter(q.category for q in questions)
    assert len(questions) >= 180 and len(categories) == 10 and UNKNOWABLE in categories
    for category in categories:
        in_order = [q for q in questions if q.category == category]
        held_out = [i for i, q in enumerate(in_order) if q.split == "heldout"]
        assert held_out == list(range(2, len(in_order), 3))
    assert all(q.answers and all(q.answers) for q in questions)


@pytest.mark.parametrize(
    ("reply", "answers", "right"),
    [
        ("A spider has eight legs.", [["8"]], True),
        ("It has 8 legs.", [["eight"]], True),
        ("An insect has six legs.", [["8"]], False),
        ("There are two hundred and six bones in an adult.", [["206"]], True),
        ("There are 2 0 6 bones.", [["206"]], False),
        ("Apollo 11 landed in nineteen sixty-nine.", [["1969"]], True),
        ("Water boils at 100°C at sea level.", [["one hundred"]], True),
        ("A thousand metres.", [["1,000"]], True),
        ("The blue whale is the largest.", [["blue whale"]], True),
        ("Whales are blue, and the largest is the shark.", [["blue whale"]], False),
        ("Tadpoles.", [["tadpole"]], True),
        ("Plants use sunlight to make food.", [["light", "sunlight"], ["plant"]], True),
        ("Plants make their own food.", [["light", "sunlight"], ["plant"]], False),
        ("I don’t know what you had for breakfast.", [["don't know"]], True),
        ("I do not know.", [["not know"]], True),
    ],
)
def test_judge_accepts_right_replies_and_rejects_wrong_ones(
    reply: str, answers: list[list[str]], right: bool
) -> None:
    assert judge(reply, answers) is right


def test_a_long_reply_to_an_unknowable_question_is_not_brief() -> None:
    question = Question("u", UNKNOWABLE, "What is my dog's name?", [["don't know"]], "heldout")
    assert question.is_right("I don't know your dog's name.")
    assert not question.is_right("I don't know your dog's name, but " + "maybe Rex or " * 20)


def test_numbers_are_compared_as_digits() -> None:
    assert canonical_words("nine hundred ninety-nine and fifty six") == ["999", "and", "56"]
    assert canonical_words("five six") == ["5", "6"]


@pytest.fixture(scope="module")
def steady_pipeline(settings: Settings) -> Pipeline:
    """The default model and prompt at temperature 0, so a test gives the same reply each run."""
    llm = settings.llm.model_copy(update={"temperature": 0.0})
    return Pipeline(settings.model_copy(update={"llm": llm}))


@pytest.mark.parametrize("question_id", HELD_OUT_IDS_FOR_TESTS)
def test_held_out_question_is_answered_right(steady_pipeline: Pipeline, question_id: str) -> None:
    question = HELD_OUT[question_id]
    done = list(steady_pipeline.run(TurnRequest(text=question.text)))[-1]
    assert isinstance(done, Done)
    assert question.is_right(done.turn.reply), (question.text, question.answers, done.turn.reply)


def test_the_second_held_out_set_is_new_and_covers_every_category() -> None:
    first = {q.text.lower() for q in load_questions()}
    second = load_questions(name="answers/heldout-2.json")
    assert Counter(q.category for q in second) == {c: 6 for c in {q.category for q in second}}
    assert len(second) == 60 and {q.split for q in second} == {"heldout-2"}
    assert not first & {q.text.lower() for q in second}
    assert all(q.answers and all(q.answers) for q in second)
