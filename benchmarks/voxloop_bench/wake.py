"""`voxloop bench wake`: is the wake phrase heard from any voice, and nothing else wakes it?

Everything goes through the real hands-free path: 16 kHz audio fed as the page's microphone
frames to a HandsFree session in wake mode (VAD, live Moonshine transcript, wake matcher with
its second opinion). Only the answer itself is not generated: the session records what it
would answer, then falls asleep again, so every utterance is judged on its own.

- Wake phrases: each question of benchmarks/wake/wake.json after the phrase, in several forms
  ("Hey computer. ...", "Hey computer, ...", "Hey, computer. ...", "hey computer ..." run on,
  and the bare phrase), spoken by voxloop's voices and by engines voxloop does not speak with
  (flite, festival). Voices are split: defaults are tuned on TUNING_VOICES only.
- False wakes: real recordings (and variants of them) and everyday sentences spoken by every
  voice, none with the phrase; wakes per hour of speech.
- Near misses: sentences opening with something like the phrase, which must not wake.
- Ablation: the same utterances judged by the old matcher (exact words anywhere), by the sound
  match at several tolerances, and with or without the second opinion.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxloop import audio
from voxloop.config import Settings
from voxloop.conversation import Conversation, Event, Options, StateChanged
from voxloop.conversation.playback import Reply
from voxloop.conversation.prepared import Answer
from voxloop.errors import ConfigError
from voxloop.pipeline import Pipeline
from voxloop.turns import Release
from voxloop.wake import WakeMatcher, rest_after
from voxloop_bench import data_file, feed_like_a_microphone, progress_bar, recordings, suite

# name -> (engine, voice): voxloop's own voices and engines voxloop does not use
VOICES = {
    "joe": ("voxloop", "joe"),
    "jf_alpha": ("voxloop", "jf_alpha"),
    "jf_gongitsune": ("voxloop", "jf_gongitsune"),
    "jf_nezumi": ("voxloop", "jf_nezumi"),
    "jf_tebukuro": ("voxloop", "jf_tebukuro"),
    "jm_kumo": ("voxloop", "jm_kumo"),
    "espeak-en-m": ("voxloop", "espeak-en-m"),
    "espeak-en-f": ("voxloop", "espeak-en-f"),
    "flite-kal": ("flite", "kal"),
    "flite-slt": ("flite", "slt"),
    "flite-rms": ("flite", "rms"),
    "flite-awb": ("flite", "awb"),
    "festival-ked": ("festival", "voice_ked_diphone"),
}
# Tolerance and window are chosen on these; the others are held out.
TUNING_VOICES = ("joe", "jf_alpha", "jf_nezumi", "jm_kumo", "espeak-en-m", "flite-kal", "flite-slt")
TOLERANCES = (0.0, 0.1, 0.2, 0.3)
CONFIDENCES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
ORDINARY_VOICES_PER_SENTENCE = 2  # each everyday sentence is said by this many voices, in turn
LEAD_SILENCE_SECONDS = 0.5
GAP_SECONDS = 1.2  # after each utterance: more than the VAD's end-of-turn silence
PROCESSES = 6  # the machine is shared: more processes, a bigger share of it
ORDINARY_VOICE_STEP = 3  # the second voice of a sentence is this many voices further on
DUTCH_EVERY = 10  # a tenth of the game's Dutch lines (about 9 minutes): a language apart
FILLETS_SOUND = recordings.FILLETS_SOUND  # Debian fillets-ng-data: real voice acting
# Variants of the real recordings (ffmpeg filters at 16 kHz): other channels, paces and voices.
REAL_VARIANTS = {
    "original": "anull",
    "telephone": "highpass=f=300,lowpass=f=3400,aresample=8000,aresample=16000",
    "fast": "atempo=1.3",
    "slow": "atempo=0.8",
    "higher": "asetrate=18400,aresample=16000,atempo=0.87",
    "lower": "asetrate=13600,aresample=16000,atempo=1.18",
    "quiet-noisy": "volume=0.5,aeval=val(0)+0.02*(random(0)-0.5)",
}
REST_MATCH_WER = 0.5  # the words after the phrase are "the question" at most this far from it
QUIET_SECONDS = 0.3  # the session's queue is empty and nothing changed for this long: done
DRAIN_TIMEOUT_SECONDS = 120.0


@suite("wake")
def wake(settings: Settings) -> dict[str, Any]:
    """Wake phrases from 13 voices, false wakes per hour of speech without it, near misses."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    jobs = [("wake", voice) for voice in VOICES]
    jobs += [("real", name) for name in [*REAL_VARIANTS, "dutch"]]
    jobs += [("near_misses", voice) for voice in VOICES]
    jobs += [("ordinary", voice) for voice in VOICES]
    # Jobs in parallel processes (one after another they take hours on two busy cores); each
    # job's results are kept, so a run that was stopped goes on where it was. The jobs draw no
    # bars of their own: one bar, here, counts them as they end.
    with (
        ProcessPoolExecutor(PROCESSES, mp_context=get_context("spawn")) as pool,
        progress_bar("wake", "job", len(jobs)) as bar,
    ):
        futures = {
            pool.submit(_kept_job, settings, kind, name): (kind, name) for kind, name in jobs
        }
        for future in as_completed(futures):
            future.result()
            bar.set_postfix_str(" ".join(futures[future]), refresh=False)
            bar.update()
    return report_kept(settings)


def report_kept(settings: Settings) -> dict[str, Any]:
    """The report of the jobs done so far with these settings (all, after a whole run)."""
    results: dict[str, Any] = {"wake": {}, "near_misses": {}, "false_wakes": {}}
    for path in sorted(_kept_dir(settings).glob("*.json")):
        kind, name = path.stem.split(":", 1)
        group = kind if kind in results else "false_wakes"
        key = f"{kind}-{name}" if group == "false_wakes" else name
        results[group][key] = json.loads(path.read_text())
    return _report(settings, results)


def _kept_dir(settings: Settings) -> Path:
    """Where the jobs' results are kept, one folder per set of hands-free settings."""
    import hashlib

    key = json.dumps(settings.handsfree.model_dump(), sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return settings.cache_dir / "bench-wake" / f"results-{digest}"


def _kept_job(settings: Settings, kind: str, name: str) -> None:
    path = _kept_dir(settings) / f"{kind}:{name}.json"
    if not path.exists():
        results = _job(settings, kind, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".part").write_text(json.dumps(results))
        path.with_suffix(".part").rename(path)


def _job(settings: Settings, kind: str, name: str) -> list[dict[str, Any]]:
    """One voice's wake phrases or near misses through hands-free sessions; one source of
    speech without the phrase through the session's matcher."""
    data = json.loads(data_file("wake/wake.json").read_text())
    folder = settings.cache_dir / "bench-wake"
    matcher = WakeMatcher(settings)
    if kind in ("wake", "near_misses"):
        if kind == "wake":
            phrase = settings.handsfree.wake_phrase
            items = _wake_utterances(settings, folder, name, phrase, data["questions"])
        else:
            items = _near_misses(settings, folder, name, data["near_misses"])
        return _complete(_run(Pipeline(settings), items), matcher)
    if kind == "ordinary":
        items = _ordinary_speech(settings, folder, name, data["ordinary"])
        return _complete(_judge(settings, matcher, items), matcher)
    results = _judge(settings, matcher, _real_source(settings, folder, name))
    for item in results:
        item.pop("_openings")  # the real recordings are long: no second opinion for all
    return results


def _judge(settings: Settings, matcher: WakeMatcher, items: list[Item]) -> list[dict[str, Any]]:
    """Speech without the phrase, cut into turns by the VAD as hands-free does, each turn's
    transcript (the live engine's) and audio given to the session's matcher."""
    from voxloop.stt import get_transcriber
    from voxloop.vad import TurnDetector

    transcriber = get_transcriber(settings, settings.stt.partial_engine)
    detector = TurnDetector(settings.vad)
    silence = np.zeros(round(LEAD_SILENCE_SECONDS * audio.SAMPLE_RATE), np.float32)
    gap = np.zeros(round(GAP_SECONDS * audio.SAMPLE_RATE), np.float32)
    results = []
    for item in items:
        decisions = []
        for event in detector.feed(np.concatenate([silence, item.samples, gap])):
            if event.kind == "end" and event.audio is not None:
                decisions.append(_decide(matcher, transcriber, event.audio))
        results.append(_result(item, decisions))
    return results


def _decide(matcher: WakeMatcher, transcriber: Any, turn: np.ndarray) -> Decision:
    """The session's decision while asleep: the transcript's opening, else the second opinion
    when the transcript is near enough the phrase to ask it."""
    stream = transcriber.stream()
    stream.add(turn)
    text = stream.finish().text.strip()
    window = audio.to_int16(turn[: round(matcher.window_seconds * audio.SAMPLE_RATE)])
    if matcher.in_transcript(text) is not None:
        return Decision(text, window, None, [text], True)
    if not matcher.worth_asking(text):
        return Decision(text, window, None, [], False)
    probability = matcher.opening_probability(turn)
    woke = probability >= matcher.confidence
    return Decision(text, window, probability, [text] if woke else [], woke)


def _complete(items: list[dict[str, Any]], matcher: WakeMatcher) -> list[dict[str, Any]]:
    """Ask the second opinion where the session did not (the transcript matched, or was too far
    from the phrase to ask), for the ablation; then drop the audio."""
    for item in items:
        openings = item.pop("_openings")
        for number, probability in enumerate(item["probabilities"]):
            if probability is None and openings[number] is not None:
                samples = audio.from_int16(openings[number])
                item["probabilities"][number] = matcher.opening_probability(samples)
    return items


@dataclass
class Item:
    """One utterance fed to the session: its audio, what is said, and what is asked."""

    samples: np.ndarray
    text: str
    question: str = ""  # the words after the phrase ('' for the bare phrase)
    form: str = ""


@dataclass
class Decision:
    """What the session made of one utterance (VAD turn)."""

    transcript: str = ""
    opening: np.ndarray | None = None  # int16, the second opinion's window
    probability: float | None = None  # the second opinion's, when asked
    answers: list[str] = field(default_factory=list)
    woke: bool = False


class _Observed(Conversation):
    """A wake-mode conversation that records its decisions instead of answering."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(pipeline, Options(wake=True), self._on_event)
        self.gate.matcher = _RecordingMatcher(self)
        self.decisions: list[Decision] = []
        self.queued = self.handled = 0
        self.changed = time.monotonic()

    def feed(self, samples: np.ndarray) -> None:
        self.queued += 1
        super().feed(samples)

    def _update_partial(self) -> None:
        super()._update_partial()
        self.handled += 1  # called once per frame, after the VAD's events

    def _speech_started(self) -> None:
        self.decisions.append(Decision())
        super()._speech_started()

    def _what_to_answer(self, text: str, frames: list[np.ndarray], final: bool = True) -> str:
        if text and self.decisions:
            decision = self.decisions[-1]
            decision.transcript = text
            seconds = self.gate.matcher.window_seconds
            window = np.concatenate(frames)[: round(seconds * audio.SAMPLE_RATE)]
            decision.opening = audio.to_int16(window)  # int16: many windows are kept
            self.changed = time.monotonic()
        return super()._what_to_answer(text, frames, final)

    def _start_answer(self, text: str, speech_ended_at: float, held: bool = False) -> Answer:
        self._woke(text)
        answer = Answer(Reply(0, text), threading.Event(), Release())
        answer.release.set()
        return answer

    def _on_event(self, event: Event) -> None:
        if event == StateChanged("awake"):
            self._woke("")

    def _woke(self, text: str) -> None:
        if self.decisions:
            self.decisions[-1].answers.append(text)
            self.decisions[-1].woke = True
        self.gate.fall_asleep()  # the next utterance must wake it on its own

    def drain(self) -> None:
        """Wait until every frame fed so far has been handled."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
        while self.handled < self.queued or time.monotonic() - self.changed < QUIET_SECONDS:
            if time.monotonic() > deadline:
                raise TimeoutError("the hands-free session stopped handling audio")
            time.sleep(0.02)


class _RecordingMatcher(WakeMatcher):
    """The session's matcher, keeping what the second opinion heard."""

    def __init__(self, session: _Observed) -> None:
        super().__init__(session.settings)
        self.session = session

    def opening_probability(self, audio: np.ndarray) -> float:
        probability = super().opening_probability(audio)
        self.session.decisions[-1].probability = probability
        return probability


def _run(pipeline: Pipeline, items: list[Item]) -> list[dict[str, Any]]:
    """Feed each item to one session (with silence around it); what it decided for each."""
    session = _Observed(pipeline)
    silence = np.zeros(round(LEAD_SILENCE_SECONDS * audio.SAMPLE_RATE), np.float32)
    gap = np.zeros(round(GAP_SECONDS * audio.SAMPLE_RATE), np.float32)
    results = []
    for item in items:
        first = len(session.decisions)
        utterance = np.concatenate([silence, item.samples, gap])
        feed_like_a_microphone(session.feed_pcm16, utterance, False)
        session.drain()
        decisions = session.decisions[first:]
        results.append(_result(item, decisions))
    session.close()
    return results


def _result(item: Item, decisions: list[Decision]) -> dict[str, Any]:
    answers = [a for d in decisions for a in d.answers]
    return {
        "text": item.text,
        "form": item.form,
        "question": item.question,
        "seconds": round(len(item.samples) / audio.SAMPLE_RATE, 2),
        "turns": len(decisions),
        "woke": any(d.woke for d in decisions),
        "answers": answers,
        "transcripts": [d.transcript for d in decisions],
        "probabilities": [d.probability for d in decisions],
        "_openings": [d.opening for d in decisions],
    }


# --- the speech fed to the sessions ---


def _forms(phrase: str, question: str) -> dict[str, str]:
    """The phrase before a question, as people say and write it."""
    words = phrase.split()
    capital = phrase[:1].upper() + phrase[1:]
    lower = question[:1].lower() + question[1:]
    run_on = re.sub(r"[^\w\s']", "", f"{phrase} {lower}").lower()
    forms = {"full-stop": f"{capital}. {question}", "comma": f"{capital}, {lower}"}
    if len(words) > 1:
        forms["comma-inside"] = f"{words[0].capitalize()}, {' '.join(words[1:])}. {question}"
    forms["run-on"] = run_on
    return forms


def _wake_utterances(
    settings: Settings, folder: Path, voice: str, phrase: str, questions: list[str]
) -> list[Item]:
    items = []
    for number, question in enumerate(questions):
        forms = _forms(phrase, question)
        form = list(forms)[number % len(forms)]
        samples = _speak(settings, folder, voice, forms[form])
        items.append(Item(samples, forms[form], question, form))
    bare = phrase[:1].upper() + phrase[1:] + "."
    items.append(Item(_speak(settings, folder, voice, bare), bare, "", "bare"))
    return items


def _near_misses(settings: Settings, folder: Path, voice: str, texts: list[str]) -> list[Item]:
    return [Item(_speak(settings, folder, voice, text), text) for text in texts]


def _ordinary_speech(settings: Settings, folder: Path, voice: str, texts: list[str]) -> list[Item]:
    """The everyday sentences this voice says: each sentence is said by
    ORDINARY_VOICES_PER_SENTENCE voices, taking turns."""
    names = list(VOICES)
    return [
        Item(_speak(settings, folder, voice, text), text)
        for number, text in enumerate(texts)
        if any(
            names[(number + turn * ORDINARY_VOICE_STEP) % len(names)] == voice
            for turn in range(ORDINARY_VOICES_PER_SENTENCE)
        )
    ]


def _speak(settings: Settings, folder: Path, voice: str, text: str) -> np.ndarray:
    """`text` spoken by `voice`, 16 kHz float32 (written once under `folder`)."""
    engine, name = VOICES[voice]
    path = folder / "speech" / voice / f"{_slug(text)}.wav"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        building = path.with_suffix(".building.wav")
        _synthesize(settings, engine, name, text, building)
        building.rename(path)
    return audio.load(path)


def _synthesize(settings: Settings, engine: str, voice: str, text: str, out: Path) -> None:
    if engine == "voxloop":
        from voxloop import tts

        joined = audio.join_chunks(list(tts.synthesize(text, voice, cache_dir=settings.cache_dir)))
        out.write_bytes(audio.wav_bytes(joined.pcm, joined.sample_rate))
    elif engine == "flite":
        subprocess.run([_tool("flite"), "-voice", voice, "-t", text, "-o", str(out)], check=True)
    else:
        command = [_tool("text2wave"), "-eval", f"({voice})", "-o", str(out)]
        subprocess.run(command, input=text.encode(), check=True)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigError(f"{name} is not installed: `apt-get install flite festival` first.")
    return path


def _slug(text: str) -> str:
    return re.sub(r"\W+", "-", text.lower()).strip("-")[:80]


def _real_source(settings: Settings, folder: Path, name: str) -> list[Item]:
    """Real recordings without the phrase: the English ones in a variant (REAL_VARIANTS), or
    a share of the Dutch ones as they are."""
    if name == "dutch":
        dutch = sorted(FILLETS_SOUND.glob("*/nl/*.ogg"))[::DUTCH_EVERY]
        return [Item(audio.load(path), path.stem) for path in dutch]
    return [
        Item(_variant(folder, clip, samples, name, REAL_VARIANTS[name]), clip)
        for clip, samples in _real_english(settings)
    ]


def _real_english(settings: Settings) -> list[tuple[str, np.ndarray]]:
    """Every distinct real English recording at hand, 16 kHz float32."""
    from voxloop.assets import package_dir

    clips = [
        (recording.name, audio.load(recording.path))
        for recording in recordings.real_recordings(settings.cache_dir / "bench-recordings")
        if recording.kind in ("read", "commands", "read-48k")
    ]
    assets = package_dir("moonshine_voice") / "assets"
    for path in sorted(assets.glob("*.wav")):
        if path.name not in ("two_cities.wav", "error.wav", "success.wav"):  # dup, no speech
            clips.append((f"moonshine-{path.stem}", audio.load(path)))
    numbers = recordings.POCKETSPHINX_DATA / "numbers.raw"
    if numbers.is_file():
        pcm = audio.from_int16(numbers.read_bytes())
        clips.append(("numbers", pcm))
    # The English voice acting of the game Fish Fillets (Debian `fillets-ng-data`).
    for path in sorted(FILLETS_SOUND.glob("*/en/*.ogg")):
        clips.append((f"fillets-{path.stem}", audio.load(path)))
    return clips


def _variant(
    folder: Path, name: str, samples: np.ndarray, variant: str, afilter: str
) -> np.ndarray:
    if variant == "original":
        return samples
    out = folder / "real" / f"{name}.{variant}.wav"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        source = out.with_suffix(".source.wav")
        source.write_bytes(audio.wav_bytes(audio.to_int16(samples), audio.SAMPLE_RATE))
        command = [audio.ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(source)]
        command += ["-af", afilter, "-ar", str(audio.SAMPLE_RATE), "-ac", "1", str(out)]
        subprocess.run(command, check=True)
        source.unlink()
    return audio.load(out)


# --- the report ---


def _report(settings: Settings, results: dict[str, Any]) -> dict[str, Any]:
    """Figures per voice and source, the ablation, and the raw decisions."""
    ablation = _ablation(results, WakeMatcher(settings))
    wake = results["wake"]
    return {
        "phrase": settings.handsfree.wake_phrase,
        "settings": settings.handsfree.model_dump(),
        "wake": {
            "all": _woken(wake.values()),
            "tuning_voices": _woken(wake.get(v, []) for v in TUNING_VOICES),
            "held_out_voices": _woken(wake.get(v, []) for v in VOICES if v not in TUNING_VOICES),
            "by_voice": {voice: _woken([items]) for voice, items in wake.items()},
            "by_form": _by_form(wake),
        },
        "near_misses": {
            "woken": _woken(results["near_misses"].values()),
            "by_voice": {v: _woken([items]) for v, items in results["near_misses"].items()},
            "by_text": _near_by_text(results["near_misses"]),
        },
        "false_wakes": _false_wakes(results["false_wakes"]),
        "ablation": ablation,
        "raw": {key: results[key] for key in ("wake", "near_misses", "false_wakes")},
    }


def _woken(runs: Any) -> dict[str, Any]:
    items = [item for run in runs for item in run]
    woken = [item for item in items if item["woke"]]
    right = [item for item in woken if _rest_is_question(item)]
    return {
        "utterances": len(items),
        "woken": len(woken),
        "share": round(len(woken) / max(len(items), 1), 4),
        "question_right": round(len(right) / max(len(woken), 1), 4),
    }


def _rest_is_question(item: dict[str, Any]) -> bool:
    """The words answered are the question (the phrase taken off, the question kept)."""
    if not item["question"]:
        return item["answers"] == [""]
    answered = item["answers"][-1] if item["answers"] else ""
    edits, words = recordings.word_errors(item["question"], answered)
    return edits / max(words, 1) <= REST_MATCH_WER


def _by_form(wake: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    forms: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for items in wake.values():
        for item in items:
            forms[item["form"]].append(item)
    return {form: _woken([items]) for form, items in forms.items()}


def _near_by_text(runs: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for items in runs.values():
        for item in items:
            counts[item["text"]] += item["woke"]
    return dict(counts)


def _false_wakes(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def figures(names: list[str]) -> dict[str, Any]:
        items = [item for name in names for item in runs[name]]
        hours = sum(item["seconds"] for item in items) / 3600
        woke = sum(item["woke"] for item in items)
        return {
            "hours": round(hours, 3),
            "utterances": len(items),
            "turns": sum(item["turns"] for item in items),
            "false_wakes": woke,
            "per_hour": round(woke / max(hours, 1e-9), 2),
            "woken_by": [
                [item["text"], item["transcripts"], item["probabilities"]]
                for item in items
                if item["woke"]
            ],
        }

    real = [name for name in runs if name.startswith("real-")]
    synthetic = [name for name in runs if not name.startswith("real-")]
    return {
        "real": figures(real),
        "synthetic": figures(synthetic),
        "by_source": {name: figures([name]) for name in runs},
    }


def _ablation(results: dict[str, Any], matcher: WakeMatcher) -> dict[str, Any]:
    """Each way of deciding, on the same transcripts (and openings) the sessions had: how many
    utterances of each group it would wake."""
    groups = {
        "wake_tuning": [i for v in TUNING_VOICES for i in results["wake"].get(v, [])],
        "wake_held_out": [
            i for v in VOICES if v not in TUNING_VOICES for i in results["wake"].get(v, [])
        ],
        "near_misses_tuning": [i for v in TUNING_VOICES for i in results["near_misses"].get(v, [])],
        "near_misses_held_out": [
            i for v in VOICES if v not in TUNING_VOICES for i in results["near_misses"].get(v, [])
        ],
        "ordinary_synthetic": [
            i for name, items in results["false_wakes"].items() if not name.startswith("real")
            for i in items
        ],
        "ordinary_real": [
            i for name, items in results["false_wakes"].items() if name.startswith("real")
            for i in items
        ],
    }  # fmt: skip
    phrase = matcher.phrase
    ways: dict[str, Any] = {"exact_words_anywhere": lambda t, p: _exact_anywhere(t, phrase)}
    for tolerance in TOLERANCES:
        ways[f"sounds_{tolerance}"] = lambda t, p, tol=tolerance: (
            rest_after(t, phrase, tol) is not None
        )
    tolerance = matcher.tolerance
    for confidence in CONFIDENCES:
        ways[f"second_opinion_{confidence}"] = lambda t, p, c=confidence: p >= c
        ways[f"sounds_{tolerance}+second_opinion_{confidence}"] = lambda t, p, c=confidence: (
            rest_after(t, phrase, tolerance) is not None or p >= c
        )
        # What the sessions do: the second opinion only for transcripts near the phrase.
        ways[
            f"sounds_{tolerance}+asked_within_{matcher.ask_within}+second_opinion_{confidence}"
        ] = lambda t, p, c=confidence: (
            rest_after(t, phrase, tolerance) is not None or (matcher.worth_asking(t) and p >= c)
        )
    table: dict[str, Any] = {}
    for way, decide in ways.items():
        table[way] = {
            group: sum(
                any(
                    decide(t, p or 0.0)
                    for t, p in zip(i["transcripts"], i["probabilities"], strict=True)
                )
                for i in items
            )
            # The real recordings' turns far from the phrase were never given a second opinion.
            if group != "ordinary_real" or "asked_within" in way or "second_opinion" not in way
            else None
            for group, items in groups.items()
        }
    table["utterances"] = {group: len(items) for group, items in groups.items()}
    table["hours"] = {
        group: round(sum(i["seconds"] for i in items) / 3600, 3) for group, items in groups.items()
    }
    return table


def _exact_anywhere(text: str, phrase: list[str]) -> bool:
    """The matcher before the sound match: the phrase's exact words anywhere, spacing ignored."""
    words, target = recordings.normalize(text), "".join(phrase)
    for start in range(len(words)):
        joined = ""
        for word in words[start:]:
            joined += word
            if joined == target:
                return True
            if not target.startswith(joined):
                break
    return False
