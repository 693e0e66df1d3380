"""Many languages: real Dutch speech is transcribed, answered in Dutch and spoken by a Dutch
voice; the next turn in English switches back."""

from __future__ import annotations

import re

import pytest

from resources import require_package
from voxloop import audio
from voxloop.config import Settings, STTSettings
from voxloop.pipeline import Pipeline, voice_in
from voxloop.prompts import Utterance, classify, language_note
from voxloop.tts import find_voice
from voxloop.turns import Done, Speech, Turn, TurnRequest
from voxloop_bench.recordings import DUTCH, dutch_recordings, normalize, wer

MAX_DUTCH_WER = 0.3
DUTCH_PACKAGE = "fillets-ng-data-nl"  # the Dutch voice acting of Fish Fillets
DUTCH_WORDS = {
    "de",
    "het",
    "een",
    "en",
    "van",
    "je",
    "dat",
    "niet",
    "ik",
    "zijn",
    "op",
    "te",
    "wat",
    "er",
    "om",
    "voor",
    "met",
    "die",
    "deze",
    "dit",
    "hoe",
    "zo",
    "wel",
    "ook",
    "maar",
    "als",
    "we",
    "ze",
    "hij",
    "zij",
    "heb",
    "hebt",
    "heeft",
    "kan",
    "kunt",
    "zeker",
    "omdat",
    "weet",
    "waar",
    "geen",
    "nog",
    "al",
    "meer",
    "veel",
    "goed",
    "dingen",
    "stad",
    "jij",
    "jou",
    "u",
    "uw",
    "mijn",
    "hun",
    "ons",
    "onze",
}
ENGLISH_WORDS = {
    "the",
    "a",
    "and",
    "of",
    "to",
    "you",
    "that",
    "it",
    "for",
    "are",
    "with",
    "this",
    "what",
    "how",
    "can",
    "be",
    "not",
    "i",
    "your",
    "my",
    "they",
}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-zà-ÿ']+", text.lower())


def is_dutch(text: str) -> bool:
    """Whether `text` reads as Dutch: more Dutch than English function words."""
    words = _words(text)
    dutch = sum(w in DUTCH_WORDS for w in words)
    return dutch >= 2 and dutch > sum(w in ENGLISH_WORDS for w in words)


@pytest.fixture(scope="module")
def any_language(settings: Settings) -> Pipeline:
    return Pipeline(settings.model_copy(update={"stt": STTSettings(engine="auto")}))


def _turn(pipeline: Pipeline, request: TurnRequest) -> tuple[Turn, list[Speech]]:
    events = list(pipeline.run(request))
    assert isinstance(events[-1], Done)
    return events[-1].turn, [e for e in events if isinstance(e, Speech)]


def test_the_language_check_of_these_tests() -> None:
    assert is_dutch("Het is een goed idee om dat te doen.")
    assert not is_dutch("It is a good idea to do that.")


@pytest.mark.parametrize("name", [key.split("/")[-1] for key in DUTCH])
def test_dutch_speech_is_answered_in_dutch_by_a_dutch_voice(
    any_language: Pipeline, name: str
) -> None:
    # Every line is a test, installed or not: a missing package cannot make a test vanish.
    recording = next((r for r in dutch_recordings() if r.name == name), None)
    require_package(DUTCH_PACKAGE, recording is not None)
    assert recording is not None
    question = audio.load(recording.path)
    turn, speech = _turn(any_language, TurnRequest(audio=question))
    assert turn.language == "nl"
    assert wer([(recording.text, turn.user_text)]) <= MAX_DUTCH_WER, turn.user_text
    assert is_dutch(turn.reply), turn.reply
    assert find_voice(turn.voice).language == "nl" and speech


def test_switching_language_between_turns(any_language: Pipeline, spoken) -> None:  # type: ignore[no-untyped-def]
    require_package(DUTCH_PACKAGE, bool(dutch_recordings()))
    dutch = dutch_recordings()[0]
    first, _ = _turn(any_language, TurnRequest(audio=audio.load(dutch.path)))
    history = [
        {"role": "user", "content": first.user_text},
        {"role": "assistant", "content": first.reply},
    ]
    english = audio.load(spoken("What is the capital of France?"))
    second, speech = _turn(any_language, TurnRequest(audio=english, history=history))  # type: ignore[arg-type]
    assert second.language == "en" and "paris" in second.reply.lower()
    assert second.voice == any_language.settings.tts.voice and speech
    assert normalize(second.user_text) == normalize("What is the capital of France?")


def test_voice_follows_the_language_keeping_the_gender() -> None:
    assert voice_in("joe", "en") == "joe"
    assert voice_in("joe", "nl") == "espeak-nl-m"
    assert voice_in("jf_alpha", "fr") == "espeak-fr-f"
    assert voice_in("joe", "xx") == "joe"  # no voice for it: keep the person's choice


def test_the_model_is_told_the_language_only_when_it_is_not_english() -> None:
    assert language_note("en") is None
    assert "Dutch" in (language_note("nl") or "")
    # The English patterns for cut-off words do not apply to Dutch ("... over is.").
    assert classify("Dat is alles wat er van hem over is", language="nl") is Utterance.QUESTION
