"""Text to speech: every bundled voice speaks words that transcribe back, streamed in chunks."""

from __future__ import annotations

import numpy as np
import pytest

from voxloop import audio, tts
from voxloop.config import Settings, load_settings
from voxloop.errors import ConfigError
from voxloop.stt import get_transcriber
from voxloop_bench.recordings import wer

SENTENCE = "The weather is lovely today. Shall we walk to the old bridge by the river?"
BUNDLED_VOICES = ["joe", "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
# Kokoro's Japanese voice packs speak English with an accent; espeak-ng is robotic.
MAX_WER = {"piper": 0.10, "kokoro": 0.25, "espeak": 0.25}


@pytest.fixture(scope="module")
def listener() -> object:
    """Whisper base: a different engine family from every voice under test."""
    return get_transcriber(
        load_settings(stt={"engine": "whisper", "whisper_model": "base", "language": "en"})
    )


def _speak(text: str, voice: str, settings: Settings, speed: float = 1.0) -> list[audio.AudioChunk]:
    return list(tts.synthesize(text, voice, cache_dir=settings.cache_dir, speed=speed))


@pytest.mark.parametrize("voice_id", [*BUNDLED_VOICES, "espeak-en-m", "espeak-en-f"])
def test_voice_round_trip(voice_id: str, settings: Settings, listener) -> None:  # type: ignore[no-untyped-def]
    chunks = _speak(SENTENCE, voice_id, settings)
    assert len(chunks) == 2, "one chunk per sentence: audio streams before the text is done"
    joined = audio.join_chunks(chunks)
    assert joined.pcm.dtype == np.int16 and joined.seconds > 2
    heard = listener.transcribe(audio.to_mono_16k(joined.pcm, joined.sample_rate)).text
    assert wer([(SENTENCE, heard)]) <= MAX_WER[tts.find_voice(voice_id).engine], heard


def test_speed_changes_duration(settings: Settings) -> None:
    normal = audio.join_chunks(_speak(SENTENCE, "joe", settings)).seconds
    fast = audio.join_chunks(_speak(SENTENCE, "joe", settings, speed=1.5)).seconds
    assert fast < normal * 0.8


def test_catalog_lists_every_voice_with_its_fields() -> None:
    voices = tts.catalog()
    ids = [v.id for v in voices]
    assert ids[0] == "joe" and set(BUNDLED_VOICES) <= set(ids)
    assert len(ids) == len(set(ids))
    assert {v.gender for v in voices} == {"male", "female"}
    assert {v.engine for v in voices} == {"piper", "kokoro", "espeak"}
    assert len({v.language for v in voices}) > 30
    assert set(voices[0].as_dict()) >= {"id", "engine", "language", "gender"}


def test_voice_for_language_prefers_gender() -> None:
    french = tts.voice_for_language("fr", "female")
    assert french is not None and french.id == "espeak-fr-f"
    assert tts.voice_for_language("en", "male").id == "joe"  # type: ignore[union-attr]
    assert tts.voice_for_language("tlh") is None


def test_unknown_voice_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="Unknown voice 'robot'"):
        _speak("Hi.", "robot", settings)
