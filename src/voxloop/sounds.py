"""What words sound like: their phonemes (espeak-ng), and how far two sets of sounds are apart.

Recognizers mishear a word as another that sounds alike ("they computer" for "hey computer",
"tigers" for "timers"); comparing sounds rather than letters finds what was meant. Used by the
wake phrase (`wake.py`) and the skills (`skills/sound_alike.py`).
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess

log = logging.getLogger("voxloop.sounds")

ESPEAK = "espeak-ng"
ESPEAK_VOICE = "en-us"
ESPEAK_TIMEOUT_SECONDS = 5.0
# Marks of stress, length and syllables that do not change which sounds were said.
_PROSODY = re.compile(r"[ˈˌːˑ.\-_|\s]")
# Sounds that espeak writes with two letters, compared as one.
_COMPOUND_SOUNDS = ("eɪ", "aɪ", "aʊ", "oʊ", "ɔɪ", "əʊ", "tʃ", "dʒ", "ɪə", "eə", "ʊə")
_CACHE_SIZE = 4096
_VOWELS = frozenset("aeiouyæɐɑɒɔəɘɚɛɜɝɞɤɨɪʉʊʌʏøœɵ")
VOWEL_COST = 2


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
