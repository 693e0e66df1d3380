"""Decoding what people have (any format, rate, channels) and refusing what is not audio."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from voxloop import audio
from voxloop.errors import AudioTooLong, BadAudio, NoSpeech
from voxloop.pipeline import Pipeline
from voxloop_bench.recordings import POCKETSPHINX_DATA, wer

ORIGINAL = POCKETSPHINX_DATA / "librivox" / "sense_and_sensibility_01_austen_64kb-0930.wav"
ORIGINAL_TEXT = "he might even have been made amiable himself"
# extension -> (ffmpeg options, sample rate, channels): every container people send us
FORMATS = {
    "wav": (["-c:a", "pcm_s24le"], 48000, 2),
    "flac": ([], 22050, 1),
    "ogg": (["-c:a", "libvorbis"], 44100, 2),
    "mp3": (["-c:a", "libmp3lame"], 44100, 1),
    "webm": (["-c:a", "libopus"], 48000, 1),
    "m4a": (["-c:a", "aac"], 32000, 2),
}


def _convert(source: Path, out: Path, options: list[str], rate: int, channels: int) -> Path:
    subprocess.run(
        [
            audio.ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-i",
            str(source),
            *options,
            "-ar",
            str(rate),
            "-ac",
            str(channels),
            str(out),
        ],
        check=True,
    )
    return out


@pytest.mark.parametrize("extension", list(FORMATS))
def test_every_common_format_decodes_to_16k_mono(
    extension: str, tmp_path: Path, pipeline: Pipeline
) -> None:
    options, rate, channels = FORMATS[extension]
    path = _convert(ORIGINAL, tmp_path / f"speech.{extension}", options, rate, channels)
    samples = audio.load(path)
    expected = audio.load(ORIGINAL)
    assert samples.dtype == np.float32 and samples.ndim == 1
    # same duration within codec padding
    assert abs(len(samples) - len(expected)) / audio.SAMPLE_RATE < 0.1
    assert wer([(ORIGINAL_TEXT, pipeline.transcribe(samples).text)]) <= 0.15


def test_bytes_and_paths_decode_alike() -> None:
    assert np.array_equal(audio.load(ORIGINAL.read_bytes()), audio.load(ORIGINAL))


def test_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(BadAudio, match="empty"):
        audio.load(empty)


def test_zero_length_wav_is_refused(tmp_path: Path) -> None:
    zero = tmp_path / "zero.wav"
    zero.write_bytes(audio.wav_bytes(np.zeros(0, np.int16), 16000))
    with pytest.raises(BadAudio, match="zero length"):
        audio.load(zero)


@pytest.mark.parametrize(
    "content",
    [b"This is a shopping list, not a recording.\n" * 50, bytes(range(256)) * 40],
    ids=["text", "binary"],
)
def test_a_file_that_is_not_audio_is_refused(content: bytes, tmp_path: Path) -> None:
    fake = tmp_path / "question.wav"
    fake.write_bytes(content)
    with pytest.raises(BadAudio, match="not audio"):
        audio.load(fake)


def test_truncated_wav_header_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(ORIGINAL.read_bytes()[:30])
    with pytest.raises(BadAudio):
        audio.load(broken)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadAudio, match="No such file"):
        audio.load(tmp_path / "nope.wav")


def test_too_long_recording_is_refused_before_decoding_it_all(tmp_path: Path) -> None:
    with pytest.raises(AudioTooLong, match="limit is 2 s"):
        audio.load(ORIGINAL, max_seconds=2)
    mp3 = _convert(ORIGINAL, tmp_path / "long.mp3", [], 16000, 1)  # the ffmpeg path
    with pytest.raises(AudioTooLong, match="limit is 2 s"):
        audio.load(mp3, max_seconds=2)


def test_too_big_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AudioTooLong, match="MB"):
        audio.load(ORIGINAL, max_megabytes=0.05)


def test_silence_and_noise_are_no_speech(pipeline: Pipeline) -> None:
    silence = np.zeros(3 * audio.SAMPLE_RATE, np.float32)
    noise = np.random.default_rng(0).normal(0, 0.01, 3 * audio.SAMPLE_RATE).astype(np.float32)
    for samples in (silence, noise):
        with pytest.raises(NoSpeech, match="No speech heard"):
            pipeline.transcribe(samples)


def test_resample_keeps_a_tone_at_its_pitch() -> None:
    t = np.arange(44100) / 44100
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = audio.to_mono_16k(np.stack([tone, tone], axis=1), 44100)
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * audio.SAMPLE_RATE / len(out)
    assert len(out) == audio.SAMPLE_RATE and abs(peak_hz - 440) < 2
