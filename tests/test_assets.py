"""Joining split model parts and checking them by sha256 (logic, on small files)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from voxloop import assets
from voxloop.errors import ModelUnavailable


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
