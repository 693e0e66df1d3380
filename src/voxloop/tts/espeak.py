"""espeak-ng (the Debian command): robotic, but speaks about a hundred languages instantly."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from voxloop.audio import AudioChunk
from voxloop.errors import ModelUnavailable
from voxloop.text import sentences
from voxloop.tts import Voice, add_voices, engines

ESPEAK_WORDS_PER_MINUTE = 175  # espeak-ng's own default rate, our speed 1.0
# ISO 639-1 code (what Whisper detects) -> espeak-ng voice name, for common languages.
LANGUAGES = {
    "en": "en-us", "fr": "fr-fr", "de": "de", "es": "es", "it": "it", "pt": "pt-br",
    "nl": "nl", "pl": "pl", "ru": "ru", "uk": "uk", "sv": "sv", "da": "da", "nb": "nb",
    "fi": "fi", "cs": "cs", "sk": "sk", "ro": "ro", "hu": "hu", "el": "el", "tr": "tr",
    "ar": "ar", "he": "he", "hi": "hi", "bn": "bn", "ur": "ur", "fa": "fa", "id": "id",
    "ms": "ms", "vi": "vi", "th": "th", "zh": "cmn", "yue": "yue", "ja": "ja", "ko": "ko",
    "sw": "sw", "ca": "ca", "eu": "eu", "hr": "hr", "sr": "sr", "bg": "bg",
}  # fmt: skip
VARIANTS = {"male": "m3", "female": "f3"}


class EspeakSynthesizer:
    """Runs `espeak-ng --stdout` once per sentence."""

    def __init__(self) -> None:
        exe = shutil.which("espeak-ng")
        if exe is None:
            raise ModelUnavailable(
                "espeak-ng is not installed; run `make setup` (or `apt-get install espeak-ng`)."
            )
        self.exe = exe

    def stream(self, text: str, voice: Voice, speed: float = 1.0) -> Iterator[AudioChunk]:
        """Yield one chunk per sentence."""
        rate = str(round(ESPEAK_WORDS_PER_MINUTE * speed))
        for sentence in sentences(text):
            wav = subprocess.run(
                [self.exe, "--stdout", "-v", voice.native_name, "-s", rate, sentence],
                capture_output=True,
                check=True,
            ).stdout
            with wave.open(io.BytesIO(wav)) as w:
                pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
                yield AudioChunk(w.getframerate(), pcm)


@engines.register("espeak")
def _build(cache_dir: Path) -> EspeakSynthesizer:
    return EspeakSynthesizer()


add_voices(
    *(
        Voice(
            id=f"espeak-{code}-{gender[0]}",
            engine="espeak",
            language=code,
            gender=gender,  # type: ignore[arg-type]
            description=f"espeak-ng {name}, {gender}",
            native_name=f"{name}+{variant}",
        )
        for code, name in LANGUAGES.items()
        for gender, variant in VARIANTS.items()
    )
)
