"""Real speech with known transcripts, for accuracy tests and benchmarks, and the WER measure.

The recordings come from Debian's `pocketsphinx-testdata` (LibriVox read speech, spoken
commands) and the `moonshine-voice` wheel (a LibriVox reading at 48 kHz). Variants are made from
those same real recordings with ffmpeg: telephone band (8 kHz mu-law), fast speech (1.4x tempo,
pitch kept) and 44.1 kHz stereo.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxloop import audio
from voxloop.assets import package_dir
from voxloop.audio import SAMPLE_RATE, ffmpeg_exe

POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")
LIBRIVOX = {
    "0870": "and mister john dashwood had then leisure to consider how much there might be "
    "prudently in his power to do for them",
    "0880": "he was not an ill disposed young man",
    "0890": "unless to be rather cold hearted and rather selfish is to be ill disposed",
    "0920": "had he married a more amiable woman he might have been made still more respectable "
    "than he was",
    "0930": "he might even have been made amiable himself",
}
CARDS = {
    "001": "ten of clubs",
    "002": "four queen of clubs",
    "003": "seven of clubs",
    "004": "five five",
    "005": "eight of spades four of clubs seven of hearts",
}
RAW_COMMANDS = {"goforward": "go forward ten meters", "something": "go somewhere and do something"}
TWO_CITIES = (
    "it was the best of times it was the worst of times it was the age of wisdom it was the age "
    "of foolishness it was the epoch of belief it was the epoch of incredulity it was the season "
    "of light it was the season of darkness it was the spring of hope it was the winter of "
    "despair we had everything before us we had nothing before us we were all going direct to "
    "heaven we were all going direct the other way in short the period was so far like the "
    "present period that some of its noisiest authorities insisted on its being received for "
    "good or for evil in the superlative degree of comparison only"
)
FILLETS_SOUND = Path("/usr/share/games/fillets-ng/sound")
# Real Dutch speech: voice acting of the game Fish Fillets (Debian `fillets-ng-data-nl`), with
# the lines from the game's own Dutch dialogue script.
DUTCH = {
    "grail/nl/gr-v-jiste": "Hoe weet je dat zo zeker?",
    "music/nl/ves-v-veci": "Er zijn een hoop interessante dingen in deze stad!",
}
# kind -> ffmpeg output options that make the variant from a 16 kHz original
VARIANTS = {
    "telephone-8k": ["-af", "highpass=f=300,lowpass=f=3400", "-ar", "8000", "-c:a", "pcm_mulaw"],
    "fast-1.4x": ["-af", "atempo=1.4"],
    "stereo-44k": ["-ar", "44100", "-ac", "2"],
}


@dataclass(frozen=True)
class Recording:
    """A real recording and what is said in it."""

    name: str
    kind: str
    path: Path
    text: str


def available() -> bool:
    """Whether the Debian test recordings are installed (`make test` installs them)."""
    return (POCKETSPHINX_DATA / "librivox").is_dir()


def dutch_recordings() -> list[Recording]:
    """Real Dutch questions and remarks (empty when `fillets-ng-data-nl` is not installed)."""
    return [
        Recording(name.split("/")[-1], "dutch", FILLETS_SOUND / f"{name}.ogg", text)
        for name, text in DUTCH.items()
        if (FILLETS_SOUND / f"{name}.ogg").is_file()
    ]


def real_recordings(work_dir: Path) -> list[Recording]:
    """Every recording and variant; variants are written into `work_dir` once."""
    work_dir.mkdir(parents=True, exist_ok=True)
    read = [
        Recording(
            f"librivox-{key}",
            "read",
            POCKETSPHINX_DATA / "librivox" / f"sense_and_sensibility_01_austen_64kb-{key}.wav",
            text,
        )
        for key, text in LIBRIVOX.items()
    ]
    commands = [
        Recording(f"cards-{key}", "commands", POCKETSPHINX_DATA / "cards" / f"{key}.wav", text)
        for key, text in CARDS.items()
    ]
    for name, text in RAW_COMMANDS.items():
        wav = work_dir / f"{name}.wav"
        if not wav.exists():
            _ffmpeg(
                [
                    "-f",
                    "s16le",
                    "-ar",
                    "16000",
                    "-ac",
                    "1",
                    "-i",
                    str(POCKETSPHINX_DATA / f"{name}.raw"),
                ],
                wav,
            )
        commands.append(Recording(name, "commands", wav, text))
    two_cities = Recording(
        "two-cities-48k",
        "read-48k",
        package_dir("moonshine_voice") / "assets" / "two_cities.wav",
        TWO_CITIES,
    )
    variants = []
    for kind, options in VARIANTS.items():
        for original in read + commands[:3]:
            out = work_dir / f"{original.name}.{kind}.wav"
            if not out.exists():
                _ffmpeg(["-i", str(original.path), *options], out)
            variants.append(Recording(f"{original.name}.{kind}", kind, out, original.text))
    return [*read, *commands, two_cities, *variants]


# Shorter readings played between the repeats of the 44 s two_cities reading in a long
# recording: two_cities dominates, and each of these is a detail heard once or twice.
LONG_FILLERS = (
    "librivox/sense_and_sensibility_01_austen_64kb-0870.wav",
    "moonshine:beckett.wav",
    "librivox/sense_and_sensibility_01_austen_64kb-0880.wav",
    "moonshine:endgame_nagg_nell.wav",
    "librivox/sense_and_sensibility_01_austen_64kb-0890.wav",
    "cards/001.wav",
    "librivox/sense_and_sensibility_01_austen_64kb-0920.wav",
    "cards/003.wav",
    "librivox/sense_and_sensibility_01_austen_64kb-0930.wav",
    "cards/005.wav",
)
MOONSHINE_ASSET = "moonshine:"  # a recording among the moonshine-voice wheel's assets
LONG_PAUSE_SECONDS = 1.2  # between clips: a pause the segmenter cuts at


def long_recording(out: Path, seconds: float) -> Path:
    """A recording at least `seconds` long, made of real recordings with pauses between them:
    the two_cities reading, then a filler, over and over. Written once; format by suffix."""
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    wav = out.with_name(f"{out.stem}.building.wav")
    two_cities = _clip(f"{MOONSHINE_ASSET}two_cities.wav")
    pause = np.zeros(round(LONG_PAUSE_SECONDS * SAMPLE_RATE), np.int16)
    written = 0
    with wave.open(str(wav), "wb") as file:  # written as it goes: no whole recording in memory
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE)
        for filler in itertools.cycle(LONG_FILLERS):
            for clip in (two_cities, _clip(filler)):
                file.writeframes(clip.tobytes() + pause.tobytes())
                written += len(clip) + len(pause)
            if written >= seconds * SAMPLE_RATE:
                break
    if out.suffix != ".wav":  # converted under a temporary name: a cut-off file is no cache
        converted = out.with_name(f"{out.stem}.building{out.suffix}")
        _ffmpeg(["-i", str(wav)], converted)
        wav.unlink()
        wav = converted
    wav.rename(out)
    return out


def _clip(name: str) -> np.ndarray:
    """A real recording as 16 kHz int16: `moonshine:<asset>` or a pocketsphinx-testdata path."""
    if name.startswith(MOONSHINE_ASSET):
        path = package_dir("moonshine_voice") / "assets" / name.removeprefix(MOONSHINE_ASSET)
    else:
        path = POCKETSPHINX_DATA / name
    return audio.to_int16(audio.load(path))


def _ffmpeg(args: list[str], out: Path) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args, str(out)], check=True)


_SMALL = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}


def _number_words(digits: str) -> list[str]:
    value = int(digits)
    if len(digits) > 2:  # phone numbers, codes: said digit by digit
        return [_SMALL[int(d)] for d in digits]
    if value < 20:
        return [_SMALL[value]]
    return [_TENS[value // 10]] + ([_SMALL[value % 10]] if value % 10 else [])


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation, numbers spelled out, as WER compares them."""
    words = []
    for word in re.sub(r"[^\w\s']", " ", text.lower().replace("-", " ")).split():
        word = word.strip("'")
        if word.isdigit():
            words.extend(_number_words(word))
        elif word:
            words.append(_ABBREVIATIONS.get(word, word))
    return words


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference words): substitutions + deletions + insertions, by edit distance."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
            )
        previous = current
    return previous[-1], len(ref)


def wer(pairs: list[tuple[str, str]]) -> float:
    """Word error rate over (reference, hypothesis) pairs, pooled."""
    edits = words = 0
    for reference, hypothesis in pairs:
        e, n = word_errors(reference, hypothesis)
        edits, words = edits + e, words + n
    return edits / max(words, 1)
