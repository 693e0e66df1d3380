"""Audio in and out: decode any format to 16 kHz mono float32, resample, encode (WAV, or any
of the OpenAI speech API's formats as a stream)."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import struct
import subprocess
import threading
import wave
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxloop.errors import AudioTooLong, BadAudio

SAMPLE_RATE = 16000  # what every speech model here expects
# Units of lengths and sizes, named once for every module that converts them.
MS_PER_SECOND = 1000
SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600
BYTES_PER_MEGABYTE = 1_000_000  # decimal megabytes, as the size limits are written in settings
PCM16_FULL_SCALE = 32768.0  # int16 PCM -> float: -32768 maps to -1.0
INT16_MAX = 32767  # float -> int16 PCM: 1.0 maps to the largest sample
SILENCE_PEAK = 0.01  # below this share of full scale a synthesized sample is silence
FFMPEG_TIMEOUT_SECONDS = 120
STREAM_BLOCK_SECONDS = 1.0  # decoded at a time by `stream`: small, and ffmpeg stays busy
FLOAT32_BYTES = 4
PCM_SAMPLE_RATE = 24000  # OpenAI's raw 'pcm' speech format: 24 kHz, 16-bit, mono
ENCODE_READ_BYTES = 4096  # read from the encoder at a time: small, so audio leaves early
UNKNOWN_FRAMES = 2**63 - 1  # libsndfile's length of a file whose header does not say
STREAMING_SIZE = 0xFFFFFFFF  # a WAV header's "length unknown" (the file is still being written)
# Formats ffmpeg encodes (OpenAI's speech API offers these, plus wav and pcm written here).
ENCODER_ARGS = {
    "mp3": ["-f", "mp3", "-c:a", "libmp3lame", "-b:a", "64k"],
    "opus": ["-f", "ogg", "-c:a", "libopus", "-b:a", "32k"],
    "aac": ["-f", "adts", "-c:a", "aac", "-b:a", "64k"],
    "flac": ["-f", "flac"],
}
MEDIA_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
}
# ffmpeg's description of its input (printed when run without an output file)
_HEADER_DURATION = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_HEADER_AUDIO = re.compile(r"Stream #.*: Audio:")


@dataclass(frozen=True)
class AudioChunk:
    """A piece of synthesized speech: int16 mono PCM at `sample_rate`."""

    sample_rate: int
    pcm: np.ndarray

    @property
    def seconds(self) -> float:
        """Duration of the chunk."""
        return len(self.pcm) / self.sample_rate


def load(
    source: str | Path | bytes, *, max_seconds: float = 600.0, max_megabytes: float = 200.0
) -> np.ndarray:
    """Decode a file (path or bytes) in any common format to 16 kHz mono float32."""
    data = _read_bytes(source, max_megabytes)
    if not data:
        raise BadAudio("The file is empty.")
    try:
        samples, rate = _decode_soundfile(data, max_seconds)
    except _NotHandled:
        samples, rate = _decode_ffmpeg(data, max_seconds), SAMPLE_RATE
    if samples.size == 0:
        raise BadAudio("The recording has zero length.")
    return to_mono_16k(samples, rate)


def duration(path: str | Path, *, max_seconds: float, max_megabytes: float) -> float:
    """Seconds of audio in a file, read from its header (decoded and counted if it has none)."""
    path = Path(path)
    _check_size(path, max_megabytes)
    seconds = _header_seconds(path)
    if seconds is None:  # e.g. a browser's WebM recording: streamed once to count
        seconds = sum(len(block) for block in stream(path, max_seconds=max_seconds)) / SAMPLE_RATE
    if seconds > max_seconds:
        raise _too_long(seconds, max_seconds)
    if seconds <= 0:
        raise BadAudio("The recording has zero length.")
    return seconds


def stream(
    path: str | Path, *, max_seconds: float, block_seconds: float = STREAM_BLOCK_SECONDS
) -> Iterator[np.ndarray]:
    """Decode a file block by block to 16 kHz mono float32 with ffmpeg, never all at once."""
    # A second past the limit is decoded, so a recording over it is noticed.
    cmd = [
        ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path),
        "-t", f"{max_seconds + 1.0:.3f}", "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE),
        "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    block_bytes = round(block_seconds * SAMPLE_RATE) * FLOAT32_BYTES
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        samples = yield from _blocks(proc, block_bytes, max_seconds)
    finally:  # also when the reader stops early: no ffmpeg is left running
        _end(proc)
    if samples == 0:
        raise BadAudio(
            "This file is not audio that voxloop can read."
            if proc.returncode
            else "The recording has zero length."
        )


def _blocks(
    proc: subprocess.Popen[bytes], block_bytes: int, max_seconds: float
) -> Generator[np.ndarray, None, int]:
    """Yield ffmpeg's output in blocks; return how many samples there were."""
    assert proc.stdout is not None
    samples = 0
    while data := proc.stdout.read(block_bytes):
        block = np.frombuffer(data[: len(data) - len(data) % FLOAT32_BYTES], dtype="<f4")
        samples += block.size
        if samples > max_seconds * SAMPLE_RATE:
            raise AudioTooLong(f"The recording is longer than the limit of {max_seconds:.0f} s.")
        yield block
    return samples


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _header_seconds(path: Path) -> float | None:
    """The duration in the file's header; BadAudio if it holds no audio.

    libsndfile reads WAV, FLAC and OGG headers in about a millisecond; other formats ask
    ffmpeg (20-40 ms), which matters because every upload is measured before its turn.
    """
    import soundfile as sf

    try:
        info = sf.info(str(path))
        if 0 < info.frames < UNKNOWN_FRAMES and info.samplerate > 0:
            return float(info.frames) / info.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass  # not a format libsndfile knows (MP3 in older builds, WebM, M4A): ask ffmpeg
    try:
        proc = subprocess.run(
            [ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", str(path)],
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise BadAudio("Reading the file took too long; is it really audio?") from err
    header = proc.stderr.decode(errors="replace")
    if not _HEADER_AUDIO.search(header):
        raise BadAudio("This file is not audio that voxloop can read.")
    if not (match := _HEADER_DURATION.search(header)):
        return None  # "Duration: N/A"
    hours, minutes, seconds = match.groups()
    return int(hours) * SECONDS_PER_HOUR + int(minutes) * SECONDS_PER_MINUTE + float(seconds)


def to_mono_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Downmix (frames x channels) or mono samples and resample to 16 kHz float32."""
    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / np.iinfo(x.dtype).max
    x = x.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    return resample(x, sample_rate, SAMPLE_RATE)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """High-quality resampling of mono float32 audio."""
    if rate_in == rate_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(x.astype(np.float32), rate_in, rate_out).astype(np.float32)


def from_int16(pcm: bytes | np.ndarray) -> np.ndarray:
    """Little-endian int16 PCM (bytes, or an int16 array) -> float32 in [-1, 1)."""
    samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes) else pcm
    return np.asarray(samples, dtype=np.float32) / PCM16_FULL_SCALE


def to_int16(x: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] -> int16 PCM."""
    return (np.clip(x, -1.0, 1.0) * INT16_MAX).astype(np.int16)


def wav_bytes(pcm: np.ndarray, sample_rate: int) -> bytes:
    """Encode int16 mono PCM as a WAV file in memory."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.asarray(pcm, dtype=np.int16).tobytes())
    return buf.getvalue()


def encode_stream(chunks: Iterable[AudioChunk], audio_format: str) -> Iterator[bytes]:
    """Encode speech as it is synthesized, in any of MEDIA_TYPES' formats ('pcm' is 24 kHz)."""
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        return
    rate = PCM_SAMPLE_RATE if audio_format == "pcm" else first.sample_rate
    pcm = _pcm_at(itertools.chain([first], chunks), rate)
    if audio_format == "pcm":
        yield from pcm
    elif audio_format == "wav":
        yield _streaming_wav_header(rate)
        yield from pcm
    else:
        yield from _ffmpeg_encode(pcm, rate, ENCODER_ARGS[audio_format])


def _pcm_at(chunks: Iterable[AudioChunk], rate: int) -> Iterator[bytes]:
    """Little-endian int16 bytes at `rate` (one voice's chunks share one sample rate)."""
    import soxr

    stream = None
    for chunk in chunks:
        if chunk.sample_rate == rate:
            yield np.asarray(chunk.pcm, dtype="<i2").tobytes()
            continue
        if stream is None:  # a stream resamples chunk edges without clicks
            stream = soxr.ResampleStream(chunk.sample_rate, rate, 1, dtype="int16")
        yield stream.resample_chunk(np.asarray(chunk.pcm, dtype=np.int16)).tobytes()
    if stream is not None:
        yield stream.resample_chunk(np.zeros(0, np.int16), last=True).tobytes()


def _streaming_wav_header(sample_rate: int) -> bytes:
    """A mono 16-bit WAV header whose sizes say "unknown", for a file sent as it is made."""
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", STREAMING_SIZE) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", STREAMING_SIZE)
    )  # fmt: skip


def _ffmpeg_encode(pcm: Iterator[bytes], rate: int, output_args: list[str]) -> Iterator[bytes]:
    """Pipe int16 PCM through ffmpeg, yielding encoded bytes as soon as ffmpeg writes them."""
    command = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
        "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0",
        *output_args, "-flush_packets", "1", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    failures: list[BaseException] = []

    def feed() -> None:  # synthesis runs here, while the caller reads ffmpeg's output
        try:
            for block in pcm:
                stdin.write(block)
                stdin.flush()
        except BrokenPipeError:  # the reader stopped early and ended ffmpeg
            pass
        except BaseException as err:
            failures.append(err)
        finally:
            with contextlib.suppress(BrokenPipeError):  # ffmpeg already ended
                stdin.close()

    writer = threading.Thread(target=feed, name="voxloop-encoder", daemon=True)
    writer.start()
    try:
        while block := os.read(stdout.fileno(), ENCODE_READ_BYTES):
            yield block
        writer.join()
        if failures:
            raise failures[0]
    finally:
        _end(proc)


def trim_lead_in(chunk: AudioChunk, keep_ms: int) -> AudioChunk:
    """`chunk` with its leading silence cut to `keep_ms` before the first sound."""
    loud = np.flatnonzero(np.abs(chunk.pcm.astype(np.int32)) > SILENCE_PEAK * INT16_MAX)
    if not len(loud):
        return chunk
    start = max(0, int(loud[0]) - keep_ms * chunk.sample_rate // MS_PER_SECOND)
    return AudioChunk(chunk.sample_rate, chunk.pcm[start:])


def join_chunks(chunks: list[AudioChunk]) -> AudioChunk:
    """One chunk holding all `chunks` (resampled to the first chunk's rate if they differ)."""
    if not chunks:
        return AudioChunk(SAMPLE_RATE, np.zeros(0, np.int16))
    rate = chunks[0].sample_rate
    parts = [
        c.pcm
        if c.sample_rate == rate
        else to_int16(resample(c.pcm.astype(np.float32) / INT16_MAX, c.sample_rate, rate))
        for c in chunks
    ]
    return AudioChunk(rate, np.concatenate(parts))


def ffmpeg_exe() -> str:
    """The ffmpeg binary shipped in the imageio-ffmpeg wheel."""
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


class _NotHandled(Exception):
    """soundfile cannot read this container; try ffmpeg."""


def _read_bytes(source: str | Path | bytes, max_megabytes: float) -> bytes:
    if isinstance(source, bytes):
        _check_megabytes(len(source), max_megabytes)
        return source
    _check_size(Path(source), max_megabytes)
    return Path(source).read_bytes()


def _check_size(path: Path, max_megabytes: float) -> None:
    """BadAudio for a missing or empty file, AudioTooLong for one over the size limit."""
    if not path.is_file():
        raise BadAudio(f"No such file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise BadAudio("The file is empty.")
    _check_megabytes(size, max_megabytes)


def _check_megabytes(size: int, max_megabytes: float) -> None:
    if size > max_megabytes * BYTES_PER_MEGABYTE:
        megabytes = size / BYTES_PER_MEGABYTE
        raise AudioTooLong(f"The file is {megabytes:.0f} MB; the limit is {max_megabytes:.0f} MB.")


def _too_long(seconds: float, max_seconds: float) -> AudioTooLong:
    return AudioTooLong(f"The recording is {seconds:.0f} s long; the limit is {max_seconds:.0f} s.")


def _decode_soundfile(data: bytes, max_seconds: float) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            if f.frames == UNKNOWN_FRAMES:  # a file written as a stream: read up to the limit
                most = int(max_seconds * f.samplerate) + 1
                samples = f.read(most, dtype="float32", always_2d=True)
                if len(samples) == most:
                    raise _too_long(len(samples) / f.samplerate, max_seconds)
                return samples, f.samplerate
            if f.frames / f.samplerate > max_seconds:
                raise _too_long(f.frames / f.samplerate, max_seconds)
            return f.read(dtype="float32", always_2d=True), f.samplerate
    except sf.LibsndfileError as err:
        raise _NotHandled from err
    except RuntimeError as err:  # some libsndfile builds raise a bare RuntimeError
        raise _NotHandled from err


def _decode_ffmpeg(data: bytes, max_seconds: float) -> np.ndarray:
    # Decode one sample past the limit so "too long" is detectable without decoding everything.
    cmd = [
        ffmpeg_exe(), "-nostdin", "-v", "error", "-i", "pipe:0",
        "-t", f"{max_seconds + 1.0:.3f}", "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE),
        "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, input=data, capture_output=True, timeout=FFMPEG_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise BadAudio("Decoding the file took too long; is it really audio?") from err
    if proc.returncode != 0 or not proc.stdout:
        raise BadAudio("This file is not audio that voxloop can read.")
    samples = np.frombuffer(proc.stdout, dtype="<f4").copy()
    if samples.size / SAMPLE_RATE > max_seconds:
        raise _too_long(samples.size / SAMPLE_RATE, max_seconds)
    return samples.reshape(-1, 1)
