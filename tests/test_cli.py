"""The `voxloop` command as a person runs it: the JSON contract, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voxloop import audio
from voxloop.recordings import POCKETSPHINX_DATA, wer

READ_SPEECH = POCKETSPHINX_DATA / "librivox" / "sense_and_sensibility_01_austen_64kb-0930.wav"
READ_TEXT = "he might even have been made amiable himself"


def voxloop(*args: str | Path, data_dir: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """Run the installed `voxloop` command."""
    return subprocess.run(
        [sys.executable, "-m", "voxloop.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "VOXLOOP_DATA_DIR": str(data_dir), **(env or {})},
        timeout=300,
        check=False,
    )


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = voxloop("--help", data_dir=tmp_path)
    assert result.returncode == 0
    for command in ("ask", "transcribe", "say", "voices", "bench", "models"):
        assert command in result.stdout
    for command in ("ask", "transcribe", "say", "voices", "bench"):
        assert voxloop(command, "--help", data_dir=tmp_path).returncode == 0


def test_ask_json_contract(tmp_path: Path, spoken) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "reply.wav"
    question = spoken("What is the capital of France?")
    result = voxloop("ask", question, "--out", out, "--json", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert "capital of france" in reply["transcript"].lower()
    assert "paris" in reply["reply"].lower()
    assert Path(reply["audio"]) == out
    assert {"stt", "llm_first_token", "first_audio", "total"} <= set(reply["timings_ms"])
    heard = audio.load(out)
    assert len(heard) / audio.SAMPLE_RATE > 0.5
    back = json.loads(voxloop("transcribe", out, "--json", data_dir=tmp_path).stdout)
    assert "paris" in back["text"].lower()


def test_ask_with_text_and_a_session_remembers(tmp_path: Path) -> None:
    first = voxloop(
        "ask",
        "--text",
        "My name is Ada.",
        "--session",
        "s",
        "--out",
        tmp_path / "a.wav",
        data_dir=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    second = voxloop(
        "ask",
        "--text",
        "What is my name?",
        "--session",
        "s",
        "--json",
        "--out",
        tmp_path / "b.wav",
        data_dir=tmp_path,
    )
    assert "ada" in json.loads(second.stdout)["reply"].lower()


@pytest.mark.parametrize("engine", ["moonshine", "whisper"])
def test_transcribe_json(engine: str, tmp_path: Path) -> None:
    result = voxloop("transcribe", READ_SPEECH, "--engine", engine, "--json", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)
    assert transcript["language"] == "en"
    assert wer([(READ_TEXT, transcript["text"])]) <= 0.10


def test_say_and_voices(tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    result = voxloop(
        "say", "**Hello** there 👋", "--voice", "jf_alpha", "--out", out, data_dir=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert len(audio.load(out)) > audio.SAMPLE_RATE // 2
    voices = json.loads(voxloop("voices", "--json", data_dir=tmp_path).stdout)
    assert {"id", "engine", "language", "gender"} <= set(voices[0])
    assert {v["gender"] for v in voices} == {"male", "female"}


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str | Path], str, dict[str, str]]]:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text_file = tmp_path / "notes.wav"
    text_file.write_text("remember to buy milk\n" * 20)
    silence = tmp_path / "silence.wav"
    silence.write_bytes(audio.wav_bytes(np.zeros(48000, np.int16), 16000))
    return {
        "missing": (["transcribe", tmp_path / "nope.wav"], "No such file", {}),
        "empty": (["ask", empty], "empty", {}),
        "not audio": (["transcribe", text_file], "not audio", {}),
        "silence": (["ask", silence], "No speech heard", {}),
        "too long": (
            ["transcribe", READ_SPEECH],
            "limit is 1 s",
            {"VOXLOOP_AUDIO__MAX_SECONDS": "1"},
        ),
        "unknown voice": (
            ["say", "hi", "--voice", "nobody", "--out", tmp_path / "x.wav"],
            "Unknown voice",
            {},
        ),
        "no question": (["ask"], "Give an audio file", {}),
        "bad option": (["transcribe"], "required", {}),
        "bad setting": (["voices"], "Bad setting", {"VOXLOOP_LLM__THREADS": "many"}),
    }


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for name, (args, message, env) in _bad_inputs(tmp_path).items():
        result = voxloop(*args, data_dir=tmp_path, env=env)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (name, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr)
        assert message in lines[0], (name, lines[0])
        assert "Traceback" not in result.stderr
