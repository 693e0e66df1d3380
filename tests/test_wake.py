"""The wake phrase: heard by its sounds at the opening of a transcript, with a second opinion
from Whisper on the audio when the live transcript misheard it."""

from __future__ import annotations

import pytest

from voxloop.config import Settings, load_settings
from voxloop.sounds import edit_distance, sounds
from voxloop.wake import WakeMatcher, rest_after

PHRASE = "hey computer"
TOLERANCE = load_settings().handsfree.wake_tolerance


@pytest.mark.parametrize(
    ("transcript", "question"),
    [
        ("Hey computer, what is two plus two?", "what is two plus two"),
        ("Hey, computer. How many days are there in a week?", "how many days are there in a week"),
        ("hey com puter", ""),  # spacing does not matter
        ("Hey computer.", ""),
        # What Moonshine made of "Hey computer. How many days are there in a week?":
        ("They computer, how many days are there in a week?", "how many days are there in a week"),
        ("Hey, Computers. What time is it?", "what time is it"),
    ],
)
def test_the_phrase_and_what_sounds_like_it_wake(transcript: str, question: str) -> None:
    assert rest_after(transcript, PHRASE, TOLERANCE) == question


@pytest.mark.parametrize(
    "transcript",
    [
        "What is two plus two?",
        "A computer is a machine that follows instructions.",
        "The computer is making a strange noise.",
        "My computer crashed again, hey computer.",  # the phrase must open the utterance
        "Hey, come here for a second.",
        "Compute her total score, please.",
        "Hey Peter, how was your weekend?",
        "Her computer is faster than mine.",
        "Thank you, that was very helpful.",
        "Computer, what time is it?",  # half the phrase is not the phrase
        "",
    ],
)
def test_other_sentences_do_not_wake(transcript: str) -> None:
    assert rest_after(transcript, PHRASE, TOLERANCE) is None


def test_any_phrase_can_be_the_wake_phrase() -> None:
    assert rest_after("Okay Vox Loop, what time is it?", "okay voxloop", TOLERANCE) == (
        "what time is it"
    )
    assert rest_after("Hey computer, what time is it?", "okay voxloop", TOLERANCE) is None


def test_phrases_are_compared_by_their_sounds() -> None:
    phrase = sounds("hey computer")
    assert len(phrase) == 10
    assert edit_distance(sounds("they computer"), phrase) == 1  # a consonant misheard
    assert edit_distance(sounds("hey com puter"), phrase) == 1  # a short vowel for another
    assert edit_distance(sounds("her computer"), phrase) == 2  # another vowel: another word
    assert edit_distance(sounds("the computer"), phrase) == 3


def test_after_a_second_opinion_the_question_follows_the_misheard_phrase(
    settings: Settings,
) -> None:
    matcher = WakeMatcher(settings)
    for transcript in (
        "Thank you, Peter. How many days are there in a week?",
        "Fake computer. How many days are there in a week?",
    ):
        assert matcher.in_transcript(transcript) is None
        assert matcher.heard_wake(transcript).rest == "how many days are there in a week"
