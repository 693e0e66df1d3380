"""The wake phrase: does an utterance open with it, and what does the person ask after it.

A live transcript often mishears a wake phrase ("Hey computer" comes back as "They computer",
"Fake computer", "Thank you, Peter"), so exact words are too brittle. Two checks, cheapest first:

1. The transcript's opening words are compared with the phrase by their sounds: both are turned
   into phonemes by espeak-ng, and an opening within `wake_tolerance` x the phrase's sounds of
   it wakes. An edit that touches a vowel counts double, so "They computer" is 1 from "hey
   computer" (of 10 sounds) and wakes, while "her computer" is 2 and "a computer" 3.
2. While asleep, when the transcript's opening is not the phrase but not far from it either
   (within `wake_ask_within`: "Thank you, Peter" is 0.9 of the phrase's sounds away, most
   sentences more), Whisper (tiny.en by default) is asked how likely the utterance's first
   `wake_window_seconds` open with the phrase: the probability of the phrase's own tokens given
   that audio, forced, not a free transcript (where a robotic "Hey" comes back as "A"). At
   `wake_confidence` or more it wakes, and the question is the transcript's words after the
   opening that sounds most like the phrase.

The phrase must open the utterance: "computer" in the middle of a sentence never wakes.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxloop.audio import SAMPLE_RATE
from voxloop.config import Settings
from voxloop.errors import ConfigError
from voxloop.text import words

log = logging.getLogger("voxloop.wake")

ESPEAK = "espeak-ng"
ESPEAK_VOICE = "en-us"
ESPEAK_TIMEOUT_SECONDS = 5.0
# Words beyond the phrase's own that its opening may span: a misheard phrase can come back
# as more words than it has ("hey computer" as "thank you peter").
EXTRA_OPENING_WORDS = 2
# Marks of stress, length and syllables that do not change which sounds were said.
_PROSODY = re.compile(r"[ˈˌːˑ.\-_|\s]")
# Sounds that espeak writes with two letters, compared as one.
_COMPOUND_SOUNDS = ("eɪ", "aɪ", "aʊ", "oʊ", "ɔɪ", "əʊ", "tʃ", "dʒ", "ɪə", "eə", "ʊə")
_CACHE_SIZE = 4096
_TINY = 1e-9  # the least probability counted: log(0) is no number
_VOWELS = frozenset("aeiouyæɐɑɒɔəɘɚɛɜɝɞɤɨɪʉʊʌʏøœɵ")
VOWEL_COST = 2


@dataclass(frozen=True)
class Opening:
    """How closely the first `words` words of a transcript sound like the phrase."""

    words: int  # how many words of the transcript the phrase spans
    distance: int  # edits between their sounds and the phrase's (weighted: edit_distance)
    phrase_sounds: int  # how many sounds the phrase has

    def within(self, tolerance: float) -> bool:
        """Whether the opening is near enough the phrase: at most tolerance x its sounds."""
        return self.distance <= round(tolerance * self.phrase_sounds)


@dataclass(frozen=True)
class Wake:
    """A transcript that opens with the wake phrase: what follows it, and who heard it."""

    rest: str  # the words after the phrase ('' for the bare phrase)
    heard_by: str  # "transcript" or the second recognizer's engine name


class WakeMatcher:
    """Finds the wake phrase at the opening of an utterance, from its transcript and audio."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        hands_free = settings.handsfree
        self.phrase = words(hands_free.wake_phrase)
        self.tolerance = hands_free.wake_tolerance
        self.window_seconds = hands_free.wake_window_seconds
        self.second_opinion = hands_free.wake_second_opinion
        self.confidence = hands_free.wake_confidence
        self.ask_within = hands_free.wake_ask_within

    def in_transcript(self, text: str) -> Wake | None:
        """The wake, when `text` opens with (something that sounds like) the phrase."""
        rest = rest_after(text, self.phrase, self.tolerance)
        return None if rest is None else Wake(rest, "transcript")

    def in_utterance(self, text: str, audio: np.ndarray) -> Wake | None:
        """The wake from the transcript, else from the second recognizer on the audio's opening."""
        if wake := self.in_transcript(text):
            return wake
        if not self.worth_asking(text) or not self.heard_in_audio(audio):
            return None
        return self.heard_wake(text)

    def heard_wake(self, text: str) -> Wake:
        """The wake once the second recognizer heard the phrase: the question is what follows
        the opening of `text` that sounds most like the phrase."""
        heard = words(text)
        opening = best_opening(heard, self.phrase)
        return Wake(" ".join(heard[opening.words if opening else 0 :]), self.second_opinion)

    def worth_asking(self, text: str) -> bool:
        """Whether the transcript's opening is near enough the phrase (within `ask_within` x its
        sounds) for a second opinion: most other speech is further, and is not worth the CPU."""
        opening = best_opening(words(text), self.phrase)
        return bool(self.second_opinion) and opening is not None and opening.within(self.ask_within)

    def heard_in_audio(self, audio: np.ndarray) -> bool:
        """Whether the second recognizer finds the phrase opening `audio` likely enough."""
        return self.opening_probability(audio) >= self.confidence

    def opening_probability(self, audio: np.ndarray) -> float:
        """How likely Whisper finds it that `audio` (16 kHz mono float32) opens with the phrase:
        the geometric mean of the probabilities of the phrase's tokens, each given the audio
        and the tokens before it, for the likeliest way of writing the phrase."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer

        model = self._whisper()
        features = model.feature_extractor(audio[: round(self.window_seconds * SAMPLE_RATE)])
        encoded = model.encode(pad_or_trim(features))
        multilingual = model.model.is_multilingual
        tokenizer = Tokenizer(model.hf_tokenizer, multilingual, "transcribe", "en")
        best = 0.0
        for written in _ways_to_write(self.phrase):
            tokens = tokenizer.encode(" " + written)
            result = model.model.align(
                encoded, tokenizer.sot_sequence, [tokens], features.shape[-1]
            )
            probabilities = np.maximum(np.asarray(result[0].text_token_probs), _TINY)
            best = max(best, float(np.exp(np.mean(np.log(probabilities)))))
        log.debug("the wake phrase's probability at the opening: %.3f", best)
        return best

    def prepare(self) -> None:
        """Load the second recognizer now, so the first wake is not slowed by loading it."""
        if self.second_opinion:
            self._whisper()

    def _whisper(self) -> Any:
        """The second recognizer's faster-whisper model."""
        from voxloop.stt import get_transcriber

        model = getattr(get_transcriber(self.settings, self.second_opinion), "model", None)
        if model is None or not hasattr(model, "feature_extractor"):
            raise ConfigError(
                f"handsfree.wake_second_opinion must name a Whisper engine ('whisper' or ''), "
                f"not '{self.second_opinion}'."
            )
        return model


def _ways_to_write(phrase: list[str]) -> list[str]:
    """The phrase as a transcript may begin with it: "Hey computer", "Hey, computer", ..."""
    plain = " ".join(phrase)
    ways = [plain.capitalize(), plain]
    if len(phrase) > 1:
        ways.append(f"{phrase[0].capitalize()}, {' '.join(phrase[1:])}")
    return ways


def rest_after(text: str, phrase: str | list[str], tolerance: float) -> str | None:
    """The words after `phrase` when `text` opens with words that sound like it, at most
    `tolerance` x its sounds away (None when it does not)."""
    heard = words(text)
    opening = best_opening(heard, words(phrase) if isinstance(phrase, str) else phrase)
    if opening is None or not opening.within(tolerance):
        return None
    return " ".join(heard[opening.words :])


def best_opening(words: list[str], phrase: list[str]) -> Opening | None:
    """The opening of `words` (1 to len(phrase) + EXTRA_OPENING_WORDS words) that sounds most
    like `phrase`; None when either is empty."""
    if not words or not phrase:
        return None
    longest = min(len(words), len(phrase) + EXTRA_OPENING_WORDS)
    target = sounds(" ".join(phrase))
    openings = [
        Opening(count, edit_distance(heard, target), len(target))
        for count, heard in enumerate(
            sounds_of_many([" ".join(words[:count]) for count in range(1, longest + 1)]), start=1
        )
    ]
    return min(openings, key=lambda o: (o.distance, o.words))


def sounds(text: str) -> tuple[str, ...]:
    """The sounds (phonemes) of `text`, from espeak-ng; its letters if espeak-ng is missing."""
    return sounds_of_many([text])[0]


def sounds_of_many(texts: list[str]) -> list[tuple[str, ...]]:
    """The sounds of each text, in one run of espeak-ng for those not seen before."""
    return [_cached_sounds(text) for text in texts] if _espeak() is None else _sounds(texts)


def _sounds(texts: list[str]) -> list[tuple[str, ...]]:
    if len(_known) > _CACHE_SIZE:
        _known.clear()
    found = {text: _known[text] for text in texts if text in _known}  # (sessions share it)
    unknown = [text for text in dict.fromkeys(texts) if text not in found]
    if unknown:
        heard = dict(zip(unknown, _phonemize(unknown), strict=True))
        _known.update(heard)
        found.update(heard)
    return [found[text] for text in texts]


_known: dict[str, tuple[str, ...]] = {}


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _cached_sounds(text: str) -> tuple[str, ...]:
    return tuple(re.sub(r"\W", "", text))


def _phonemize(texts: list[str]) -> list[tuple[str, ...]]:
    """One line of IPA per text (espeak-ng reads each line as a clause of its own)."""
    espeak = _espeak()
    assert espeak is not None
    try:
        result = subprocess.run(
            [espeak, "-q", "--ipa", "-v", ESPEAK_VOICE],
            input="\n".join(texts) + "\n",
            capture_output=True,
            text=True,
            timeout=ESPEAK_TIMEOUT_SECONDS,
            check=True,
        )
        lines = [line for line in result.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("espeak-ng failed (%s): comparing letters instead of sounds", err)
        lines = []
    if len(lines) != len(texts):  # espeak split or joined a line: fall back to the letters
        return [_cached_sounds(text) for text in texts]
    return [_split_sounds(line) for line in lines]


def _split_sounds(ipa: str) -> tuple[str, ...]:
    ipa = _PROSODY.sub("", ipa)
    found: list[str] = []
    position = 0
    while position < len(ipa):
        pair = ipa[position : position + 2]
        step = 2 if pair in _COMPOUND_SOUNDS else 1
        found.append(ipa[position : position + step])
        position += step
    return tuple(found)


@functools.cache
def _espeak() -> str | None:
    return shutil.which(ESPEAK)


def edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Edits between two sequences of sounds; an edit that adds, drops or changes a vowel
    counts VOWEL_COST, except one short vowel for another.

    Recognizers mishear the consonants of a phrase ("they", "fake" for "hey") more than its
    vowels, and a different vowel is most often a different word ("her", "the", "a").
    """
    previous = [0]
    for y in b:
        previous.append(previous[-1] + _cost(y))
    for x in a:
        current = [previous[0] + _cost(x)]
        for j, y in enumerate(b, start=1):
            change = _change_cost(x, y)
            current.append(
                min(previous[j] + _cost(x), current[j - 1] + _cost(y), previous[j - 1] + change)
            )
        previous = current
    return previous[-1]


def _cost(sound: str) -> int:
    return VOWEL_COST if sound[0] in _VOWELS else 1


def _change_cost(heard: str, said: str) -> int:
    if heard == said:
        return 0
    # One short vowel for another is how unstressed syllables vary ("com" as kɑm or kəm);
    # a different diphthong is a different word ("hi", "hey").
    if _cost(heard) == _cost(said) == VOWEL_COST and len(heard) == len(said) == 1:
        return 1
    return max(_cost(heard), _cost(said))
