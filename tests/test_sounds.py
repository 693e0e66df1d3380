"""What words sound like: espeak-ng's phonemes, read in process, shared safely by threads."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from voxloop import sounds

TIGERS = ("t", "aɪ", "ɡ", "ɚ", "z")


@pytest.fixture
def fresh_sounds() -> object:
    """No phonemes remembered from other tests, and none after this one."""
    sounds.sounds.cache_clear()
    sounds._espeak.cache_clear()
    yield
    sounds.sounds.cache_clear()
    sounds._espeak.cache_clear()


def test_sounds_are_read_by_the_library_without_running_a_command(
    fresh_sounds: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_command(*args: object, **kwargs: object) -> None:
        raise OSError("no command may run on the way to an answer")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_command)
    assert sounds.sounds("tigers") == TIGERS
    assert sounds.sounds("sent imeters") == ("s", "ɛ", "n", "t", "ɪ", "m", "ᵻ", "ɾ", "ɚ", "z")
    assert sounds.sounds("hey") == ("h", "eɪ")


def test_threads_asking_at_once_get_each_text_s_own_sounds(fresh_sounds: object) -> None:
    words = ["timer", "tigers", "date", "late", "computer", "minutes", "seconds", "hours"] * 25
    alone = [sounds._espeak().phonemes(word) for word in words]  # type: ignore[union-attr]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda word: sounds._espeak().phonemes(word), words))  # type: ignore[union-attr]
    assert together == alone


def test_without_the_library_letters_are_compared(
    fresh_sounds: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sounds, "_LIBRARY_DIRS", ())
    assert sounds.sounds("tigers") == tuple("tigers")
