"""Shared fixtures: settings isolated per test, real recordings, spoken questions."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from voxloop.config import Settings, load_settings
from voxloop_bench import recordings

# Tests never touch the network: Gradio analytics off, Hugging Face hubs unreachable on purpose.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Default settings with a private data dir; the model cache is shared with the app."""
    return load_settings(data_dir=tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def real_recordings(tmp_path_factory: pytest.TempPathFactory) -> list[recordings.Recording]:
    """Every real recording and its variants (see voxloop_bench.recordings)."""
    assert recordings.available(), "install pocketsphinx-testdata (make test does it)"
    return recordings.real_recordings(tmp_path_factory.mktemp("recordings"))


@pytest.fixture(scope="session")
def spoken(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """spoken(text) -> path of a WAV of espeak-ng saying `text` (drives flows, not accuracy)."""
    folder = tmp_path_factory.mktemp("spoken")

    def make(text: str, voice: str = "en-us") -> Path:
        path = folder / f"{abs(hash((text, voice)))}.wav"
        if not path.exists():
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
        return path

    return make


@pytest.fixture()
def fresh_settings(tmp_path: Path) -> Settings:
    """Settings with an empty data dir of this test's own."""
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def pipeline(settings: Settings):  # type: ignore[no-untyped-def]
    """The real pipeline with the default engines."""
    from voxloop.pipeline import Pipeline

    return Pipeline(settings)


@pytest.fixture(scope="session")
def clearly_spoken(settings: Settings, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """clearly_spoken(text) -> WAV of Kokoro's jf_alpha saying `text`: a clear, natural voice
    from another engine than the replies, for flows that pass through a browser microphone."""
    from voxloop import audio, tts

    folder = tmp_path_factory.mktemp("clearly_spoken")

    def make(text: str) -> Path:
        path = folder / f"{abs(hash(text))}.wav"
        if not path.exists():
            chunks = list(tts.synthesize(text, "jf_alpha", cache_dir=settings.cache_dir))
            joined = audio.join_chunks(chunks)
            path.write_bytes(audio.wav_bytes(joined.pcm, joined.sample_rate))
        return path

    return make


@pytest.fixture(scope="session")
def postgres():  # type: ignore[no-untyped-def]
    """A real PostgreSQL server (tests/postgres.py) for the tests of the shared store."""
    from postgres import missing_reason, postgres_cluster

    if reason := missing_reason():
        pytest.skip(reason)
    with postgres_cluster() as cluster:
        yield cluster
