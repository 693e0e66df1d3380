"""The HTTP turn's own fields, each with an effect one can hear or read: `voice` picks the
voice that speaks, `speed` how fast it speaks, `system_prompt` how the model answers."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from servers import running_server, turn_events

# A skill answers this ("2 plus 2 is 4."): the same words every time, so the audio of two turns
# differs only by what the fields change.
SKILL_QUESTION = "What is two plus two?"
DEFAULT_VOICE_RATE = 22050  # Piper's 'joe'
KOKORO_VOICE, KOKORO_RATE = "jf_alpha", 24000
FASTER, SLOWER = 0.75, 1.3  # how much shorter (longer) speech at speed 2 (0.5) is, at least
PIRATE = "You are a pirate. Start every answer with the word Ahoy, and call the user matey."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `voxloop serve` on loopback."""
    with running_server(tmp_path_factory.mktemp("fields")) as url:
        yield url


def _audio(events: list[dict[str, Any]]) -> tuple[int, bytes]:
    """The sample rate and the int16 PCM of a turn's reply audio."""
    chunks = [e for e in events if e["type"] == "audio"]
    assert chunks, f"no audio in {[e['type'] for e in events]}"
    assert len({c["sample_rate"] for c in chunks}) == 1
    return chunks[0]["sample_rate"], b"".join(base64.b64decode(c["pcm_s16le"]) for c in chunks)


def _seconds(events: list[dict[str, Any]]) -> float:
    rate, pcm = _audio(events)
    return len(pcm) / 2 / rate


def test_voice_chooses_who_speaks(server: str) -> None:
    default = turn_events(server, text=SKILL_QUESTION)
    chosen = turn_events(server, text=SKILL_QUESTION, voice=KOKORO_VOICE)
    assert default[-1]["reply"] == chosen[-1]["reply"], "the same words, spoken twice"
    assert _audio(default)[0] == DEFAULT_VOICE_RATE
    assert _audio(chosen)[0] == KOKORO_RATE, "the reply is spoken by Kokoro's voice"


def test_speed_changes_how_long_the_reply_sounds(server: str) -> None:
    normal = _seconds(turn_events(server, text=SKILL_QUESTION))
    fast = _seconds(turn_events(server, text=SKILL_QUESTION, speed="2.0"))
    slow = _seconds(turn_events(server, text=SKILL_QUESTION, speed="0.5"))
    assert fast < FASTER * normal and slow > SLOWER * normal, (fast, normal, slow)


def test_system_prompt_changes_the_reply(server: str) -> None:
    question = "What is the capital of France?"
    plain = turn_events(server, text=question)[-1]["reply"]
    pirate = turn_events(server, text=question, system_prompt=PIRATE)[-1]["reply"]
    assert "ahoy" not in plain.lower(), plain
    assert "ahoy" in pirate.lower(), pirate
