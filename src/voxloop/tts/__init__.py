"""Text to speech: the Synthesizer protocol, the voice catalog and the registry of engines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Protocol

from voxloop.audio import AudioChunk
from voxloop.errors import ConfigError
from voxloop.registry import Registry


@dataclass(frozen=True)
class Voice:
    """A voice a person can pick: `id` is what config and the CLI use."""

    id: str
    engine: str
    language: str  # BCP 47, e.g. "en-us"
    gender: Literal["male", "female"]
    description: str
    native_name: str  # the name the engine itself uses

    def as_dict(self) -> dict[str, str]:
        """The voice as plain JSON-able fields."""
        return asdict(self)


class Synthesizer(Protocol):
    """A speech engine that streams audio, a sentence or so at a time."""

    def stream(self, text: str, voice: Voice, speed: float = 1.0) -> Iterator[AudioChunk]:
        """Yield int16 audio chunks speaking `text`."""
        ...


engines: Registry[Synthesizer] = Registry("speech engine")
_catalog: dict[str, Voice] = {}


def add_voices(*voices: Voice) -> None:
    """Put an engine's voices in the catalog (called by each engine module)."""
    for voice in voices:
        _catalog[voice.id] = voice


# Neural voices first: they sound best, so lists and fallbacks should offer them first.
ENGINE_ORDER = ("piper", "kokoro", "espeak")


def catalog() -> list[Voice]:
    """Every voice of every engine, neural engines first."""
    return sorted(_catalog.values(), key=lambda v: ENGINE_ORDER.index(v.engine))


def find_voice(voice_id: str) -> Voice:
    """The voice called `voice_id`, or a ConfigError listing a few that exist."""
    try:
        return _catalog[voice_id]
    except KeyError:
        some = ", ".join(list(_catalog)[:6])
        raise ConfigError(
            f"Unknown voice '{voice_id}'. Try one of: {some} (all: `voxloop voices`)."
        ) from None


def voice_for_language(language: str, gender: str | None = None) -> Voice | None:
    """The first catalog voice speaking `language` (e.g. 'fr'), preferring `gender`."""
    matches = [v for v in catalog() if v.language.split("-")[0] == language]
    preferred = [v for v in matches if v.gender == gender]
    return next(iter(preferred or matches), None)


def synthesize(
    text: str, voice_id: str, *, cache_dir: Path, speed: float = 1.0
) -> Iterator[AudioChunk]:
    """Speak `text` with the catalog voice `voice_id`, streaming chunks."""
    voice = find_voice(voice_id)
    yield from engines.get(voice.engine, cache_dir).stream(text, voice, speed)


from voxloop.tts import espeak, kokoro, piper  # noqa: E402,F401  (registers engines and voices)
