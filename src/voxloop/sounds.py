"""What words sound like: their phonemes (espeak-ng), and how far two sets of sounds are apart.

Recognizers mishear a word as another that sounds alike ("they computer" for "hey computer",
"tigers" for "timers"); comparing sounds rather than letters finds what was meant. Used by the
wake phrase (`wake.py`) and the skills (`skills/sound_alike.py`).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import re
import sysconfig
import threading
from pathlib import Path

log = logging.getLogger("voxloop.sounds")

# libespeak-ng (Debian's libespeak-ng1, which the espeak-ng package brings), called in process:
# the espeak-ng command cost ~17 ms to start and ~0.7 ms a line, on the way to every answer
# that the skills did not take; the library reads a line in ~0.02 ms.
ESPEAK_LIBRARY = "libespeak-ng.so.1"
ESPEAK_VOICE = "en-us"
_LIBRARY_DIRS = (f"/usr/lib/{sysconfig.get_config_var('MULTIARCH')}", "/usr/lib", "/usr/lib64")
_SYNCHRONOUS = 0x02  # espeak_Initialize: no audio device, no thread of its own
_UTF8 = 1  # espeak_TextToPhonemes: the text's encoding
_IPA = 0x02  # espeak_TextToPhonemes: phonemes as IPA characters
# Marks of stress, length and syllables that do not change which sounds were said.
_PROSODY = re.compile(r"[ˈˌːˑ.\-_|\s]")
# Sounds that espeak writes with two letters, compared as one.
_COMPOUND_SOUNDS = ("eɪ", "aɪ", "aʊ", "oʊ", "ɔɪ", "əʊ", "tʃ", "dʒ", "ɪə", "eə", "ʊə")
_CACHE_SIZE = 4096
_VOWELS = frozenset("aeiouyæɐɑɒɔəɘɚɛɜɝɞɤɨɪʉʊʌʏøœɵ")
VOWEL_COST = 2


@functools.lru_cache(maxsize=_CACHE_SIZE)  # (sessions share it)
def sounds(text: str) -> tuple[str, ...]:
    """The sounds (phonemes) of `text`, from espeak-ng; its letters if espeak-ng is missing."""
    espeak = _espeak()
    if espeak is None:
        return tuple(re.sub(r"\W", "", text))
    return _split_sounds(espeak.phonemes(text))


class _Espeak:
    """libespeak-ng loaded for this module alone: the library keeps one global state, so the
    calls take a lock, and it is loaded by its path, never shared with another package's copy
    (Kokoro's phonemizer loads one of its own)."""

    def __init__(self, path: Path) -> None:
        self._lib = ctypes.CDLL(str(path))
        self._lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self._lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        self._lock = threading.Lock()
        if self._lib.espeak_Initialize(_SYNCHRONOUS, 0, None, 0) <= 0:
            raise OSError(f"{path} did not initialize")
        if self._lib.espeak_SetVoiceByName(ESPEAK_VOICE.encode()) != 0:
            raise OSError(f"{path} has no voice {ESPEAK_VOICE}")

    def phonemes(self, text: str) -> str:
        """The IPA of `text`, its clauses joined by spaces."""
        remaining = ctypes.c_char_p(text.encode())
        clauses = []
        with self._lock:
            while remaining.value:  # each call reads one clause and moves the pointer on
                clause = self._lib.espeak_TextToPhonemes(ctypes.byref(remaining), _UTF8, _IPA)
                clauses.append((clause or b"").decode())
        return " ".join(clauses)


@functools.cache
def _espeak() -> _Espeak | None:
    for folder in _LIBRARY_DIRS:
        if (path := Path(folder) / ESPEAK_LIBRARY).exists():
            try:
                return _Espeak(path)
            except (OSError, AttributeError) as err:
                log.warning("%s failed (%s): comparing letters instead of sounds", path, err)
                return None
    log.warning("%s is missing: comparing letters instead of sounds", ESPEAK_LIBRARY)
    return None


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
