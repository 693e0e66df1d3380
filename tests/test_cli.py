"""The `voxloop` command as a person runs it: the JSON contract, help and version, progress
on stderr, and one-line errors."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voxloop import audio
from voxloop.cli import build_parser
from voxloop_bench import recordings
from voxloop_bench.recordings import POCKETSPHINX_DATA, wer

READ_SPEECH = POCKETSPHINX_DATA / "librivox" / "sense_and_sensibility_01_austen_64kb-0930.wav"
READ_TEXT = "he might even have been made amiable himself"
# Words of the two_cities reading that opens recordings.long_recording: a summary names some.
TWO_CITIES_WORDS = ("times", "wisdom", "foolish", "belief", "season", "light", "dark", "despair")


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
    for command in ("ask", "transcribe", "summarize", "say", "voices", "bench", "models"):
        assert command in result.stdout
    for command in ("ask", "transcribe", "say", "voices", "bench"):
        assert voxloop(command, "--help", data_dir=tmp_path).returncode == 0


def test_version_is_the_installed_package_version(tmp_path: Path) -> None:
    result = voxloop("--version", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"voxloop {importlib.metadata.version('voxloop')}"


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def test_every_help_explains_its_arguments_and_shows_defaults(tmp_path: Path) -> None:
    for name, command in _commands().items():
        assert command.description, name
        text = " ".join(command.format_help().split())  # argparse wraps lines anywhere
        for action in command._actions:
            if not action.option_strings:
                assert action.help, (name, action.dest)  # positionals are explained
            shown = action.default not in (None, argparse.SUPPRESS) and action.nargs != 0
            if shown:
                assert f"(default: {action.default})" in text, (name, action.dest)
            for choice in action.choices or ():
                assert choice in text, (name, choice)
    bench = voxloop("bench", "--help", data_dir=tmp_path).stdout
    assert "(default: engines)" in bench and "summaries" in bench
    say = " ".join(voxloop("say", "--help", data_dir=tmp_path).stdout.split())
    assert "default: the tts.voice setting, joe" in say  # where an option's default comes from
    top = voxloop("--help", data_dir=tmp_path).stdout
    assert "summarize" in top and "TQDM_DISABLE" in top


def test_summarize_a_recording_with_progress_on_stderr(tmp_path: Path) -> None:
    assert recordings.available(), "install pocketsphinx-testdata (make test does it)"
    recording = recordings.long_recording(tmp_path / "recording.wav", 1)  # about 54 s
    # TQDM_DISABLE empty: bars on, whatever the environment running the tests says.
    result = voxloop("summarize", recording, "--json", data_dir=tmp_path, env={"TQDM_DISABLE": ""})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # stdout is the JSON alone: the bars went to stderr
    assert {"transcript", "summary", "duration_seconds", "segments", "timings_ms"} <= set(summary)
    assert summary["duration_seconds"] == pytest.approx(
        audio.duration(recording, max_seconds=600, max_megabytes=100), abs=0.1
    )
    assert any(word in summary["summary"].lower() for word in TWO_CITIES_WORDS), summary
    assert "dashwood" in summary["transcript"].lower()  # the reading after two_cities
    assert {"transcription", "summary", "total"} <= set(summary["timings_ms"])
    bars = result.stderr
    assert "Transcribing: 100%" in bars and "s of audio" in bars, bars
    assert "Summarizing: 100%" in bars, bars


def test_models_counts_each_model_on_stderr(tmp_path: Path) -> None:
    result = voxloop("models", data_dir=tmp_path, env={"TQDM_DISABLE": ""})
    assert result.returncode == 0, result.stderr
    ready = result.stdout.strip().splitlines()  # one line per model, on stdout
    assert any(line.strip().startswith("smart turn:") for line in ready), result.stdout
    assert f"Preparing models: {len(ready)} ready" in result.stderr, result.stderr


def test_summarize_silence_is_a_one_line_error(tmp_path: Path) -> None:
    silence = tmp_path / "silence.wav"
    silence.write_bytes(audio.wav_bytes(np.zeros(48000, np.int16), 16000))
    result = voxloop("summarize", silence, data_dir=tmp_path)
    assert result.returncode == 2, result.stderr
    # The transcription bar was on screen when the error came: the error is the last line.
    assert result.stderr.strip().splitlines()[-1] == "error: No speech heard in the recording."
    assert "Traceback" not in result.stderr and not result.stdout


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


def _ask_text(text: str, *options: str, data_dir: Path) -> str:
    result = voxloop(
        "ask",
        "--text",
        text,
        *options,
        "--json",
        "--out",
        data_dir / "reply.wav",
        data_dir=data_dir,
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["reply"])


def test_a_fact_told_in_one_process_is_recalled_in_a_new_one(tmp_path: Path) -> None:
    _ask_text("My name is Ada.", "--session", "s", data_dir=tmp_path)
    # A new process and a new conversation: only the stored fact can carry the name.
    reply = _ask_text("What is my name?", "--session", "s", "--new-conversation", data_dir=tmp_path)
    assert "ada" in reply.lower()
    stranger = _ask_text("What is my name?", "--session", "t", data_dir=tmp_path)
    assert "ada" not in stranger.lower()


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
        "summarize not audio": (["summarize", text_file], "not audio", {}),
        "summarize missing": (["summarize", tmp_path / "nope.mp3"], "No such file", {}),
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


def test_serve_on_a_port_in_use_says_so_before_loading_models(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = voxloop("serve", "--port", port, data_dir=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert lines == [lines[0]] and f"Cannot listen on 127.0.0.1:{port}" in lines[0], lines
    assert "Loading models" not in result.stdout
