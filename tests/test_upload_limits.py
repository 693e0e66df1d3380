"""The page's upload limits: a long recording may be larger than a question's file
(`longform.max_megabytes` above `audio.max_megabytes`), and each path holds a file to its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from servers import serve_in_thread
from voxloop.audio import BYTES_PER_MEGABYTE
from voxloop.config import load_settings
from voxloop.errors import AudioTooLong
from voxloop_bench import recordings

SHORTER_SECONDS, LONGER_SECONDS = 60, 300  # two long recordings (16 kHz WAV: 32 kB a second)


@pytest.fixture(scope="module")
def talks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two long recordings made of real ones, the second much larger."""
    folder = tmp_path_factory.mktemp("talks")
    return (
        recordings.long_recording(folder / "shorter.wav", SHORTER_SECONDS),
        recordings.long_recording(folder / "longer.wav", LONGER_SECONDS),
    )


def _megabytes(path: Path) -> float:
    return path.stat().st_size / BYTES_PER_MEGABYTE


@pytest.fixture(scope="module")
def page(
    tmp_path_factory: pytest.TempPathFactory, talks: tuple[Path, Path]
) -> Iterator[tuple[str, Any]]:
    """voxloop whose question limit is below both recordings' sizes and whose long-recording
    limit lies between them, and its app."""
    from voxloop.server import create_app

    shorter, longer = talks
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("limits"),
        audio={"max_megabytes": round(_megabytes(shorter) / 2, 1)},
        longform={"max_megabytes": round((_megabytes(shorter) + _megabytes(longer)) / 2, 1)},
    )
    app = create_app(settings)
    with serve_in_thread(app) as url:
        yield url, app


def _upload(url: str, path: Path) -> httpx.Response:
    with path.open("rb") as file:
        return httpx.post(
            f"{url}/gradio_api/upload", files={"files": (path.name, file, "audio/wav")}
        )


def test_a_long_recording_larger_than_a_question_is_taken(
    page: tuple[str, Any], talks: tuple[Path, Path]
) -> None:
    url, app = page
    path, limits = talks[0], app.state.pipeline.settings
    assert limits.audio.max_megabytes < _megabytes(path) < limits.longform.max_megabytes
    response = _upload(url, path)
    assert response.status_code == 200, response.text
    [uploaded] = response.json()
    pipeline = app.state.pipeline
    assert pipeline.is_long_recording(uploaded)  # the long-recording path takes it
    with pytest.raises(AudioTooLong, match=f"limit is {limits.audio.max_megabytes:.0f} MB"):
        pipeline.load_audio(uploaded)  # a question's file that large would be refused


def test_a_recording_over_its_own_limit_is_refused_clearly(
    page: tuple[str, Any], talks: tuple[Path, Path]
) -> None:
    url, app = page
    path, limit = talks[1], app.state.pipeline.settings.longform.max_megabytes
    assert _megabytes(path) > limit
    response = _upload(url, path)
    assert response.status_code == 413
    assert "size" in response.text.lower(), response.text
    with pytest.raises(AudioTooLong, match=f"limit is {limit:.0f} MB"):
        app.state.pipeline.is_long_recording(path)
