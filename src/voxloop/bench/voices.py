"""Voices that say the benchmarks' questions: voices of engines voxloop does not speak with
(Debian's flite and festival) and voxloop's own, each synthesized once into the cache.

Names: 'flite-kal', 'flite-slt', 'flite-rms', 'flite-awb', 'festival-kal', 'festival-ked', or
a voxloop voice id ('joe', 'jf_alpha', 'espeak-en-f', ... see `voxloop voices`).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np

from voxloop import audio
from voxloop.errors import VoxloopError

SYNTH_TIMEOUT_SECONDS = 60
FOLDER = "bench-voices"


def _flite(voice: str) -> Callable[[str, Path], list[str]]:
    return lambda text, out: ["flite", "-voice", voice, "-t", text, "-o", str(out)]


def _festival(voice: str) -> Callable[[str, Path], list[str]]:
    # text2wave reads the text from stdin (see _synthesize)
    return lambda _text, out: ["text2wave", "-eval", f"(voice_{voice})", "-o", str(out)]


# voice name -> the command that writes `text` to a WAV file
OTHER_ENGINES: dict[str, Callable[[str, Path], list[str]]] = {
    "flite-kal": _flite("kal"),
    "flite-slt": _flite("slt"),
    "flite-rms": _flite("rms"),
    "flite-awb": _flite("awb"),
    "festival-kal": _festival("kal_diphone"),  # Debian festvox-kallpc16k (festival's default)
    "festival-ked": _festival("ked_diphone"),  # Debian festvox-kdlpc16k
}


def speak(text: str, voice: str, cache_dir: Path, speed: float = 1.0) -> np.ndarray:
    """`text` said by `voice`, as 16 kHz mono float32 (synthesized once, then cached)."""
    key = hashlib.sha1(f"{voice}|{speed}|{text}".encode()).hexdigest()[:16]
    path = cache_dir / FOLDER / f"{voice}-{key}.wav"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part.wav")
        if voice in OTHER_ENGINES:
            _run_engine(OTHER_ENGINES[voice](text, partial), text)
        else:
            _voxloop_voice(text, voice, cache_dir, speed, partial)
        partial.replace(path)  # a cut-off run leaves no half-written file in the cache
    return audio.load(path)


def _run_engine(command: list[str], text: str) -> None:
    if shutil.which(command[0]) is None:
        raise VoxloopError(
            f"{command[0]} is not installed: `apt-get install flite festival festvox-kdlpc16k` "
            "(`make test` installs them)."
        )
    subprocess.run(
        command, input=text.encode(), check=True, capture_output=True, timeout=SYNTH_TIMEOUT_SECONDS
    )


def _voxloop_voice(text: str, voice: str, cache_dir: Path, speed: float, out: Path) -> None:
    from voxloop import tts

    joined = audio.join_chunks(list(tts.synthesize(text, voice, cache_dir=cache_dir, speed=speed)))
    out.write_bytes(audio.wav_bytes(joined.pcm, joined.sample_rate))
