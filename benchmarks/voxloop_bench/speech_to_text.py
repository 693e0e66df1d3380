"""`voxloop bench stt`: speech to text on a broad set of real recordings, several sources and
speakers, each also as telephone band and with real noise at 10 dB SNR, plus a column of
synthetic voices of engines voxloop does not speak with. Candidates are engines and settings.

The clips, their speakers and the held-out split are in benchmarks/stt/clips.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import wave
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from voxloop.config import Settings
from voxloop.errors import VoxloopError
from voxloop_bench import _isolated, _ms, _peak_rss_mb, data_file, progress, suite

CLIPS = "stt/clips.json"
# name -> (engine, STT settings changed, whether the previous line of the dialogue is the prompt)
# Whisper's own reading (no rescoring), as every candidate was measured before stt.rescore_model.
PLAIN = {"rescore_model": None}
RESCORED = {"rescore_model": "smollm2-135m"}
CANDIDATES: dict[str, tuple[str, dict[str, Any], bool]] = {
    "moonshine": ("moonshine", {}, False),
    "whisper-tiny": ("whisper", PLAIN, False),
    "whisper-tiny-15s": ("whisper", {**PLAIN, "whisper_window_seconds": 15.0}, False),
    "whisper-tiny-30s": ("whisper", {**PLAIN, "whisper_window_seconds": 30.0}, False),
    "whisper-tiny-beam5": ("whisper", {**PLAIN, "beam_size": 5}, False),
    "whisper-tiny-fallback": ("whisper", {**PLAIN, "whisper_fallback": True}, False),
    "whisper-base": ("whisper", {**PLAIN, "whisper_model": "base", "language": "en"}, False),
    "checked": ("checked", PLAIN, False),
    "pick": ("pick", PLAIN, False),
    "whisper-tiny-prompted": ("whisper", PLAIN, True),
    "whisper-tiny-rescored": ("whisper", RESCORED, False),
    "whisper-base-rescored": (
        "whisper",
        {**RESCORED, "whisper_model": "base", "language": "en"},
        False,
    ),
}
# A comma-separated subset of CANDIDATES, to measure only some (default: DEFAULT_RUN).
CANDIDATES_ENV = "VOXLOOP_BENCH_STT_CANDIDATES"
# 'checked' and 'pick' decide between the Moonshine and Whisper tiny.en transcripts: their
# figures are derived from those two runs with the engines' own rules (what each would have
# kept, and its time: one engine or both), so the slow machine decodes each clip once per model.
DERIVED = {"checked": ("moonshine", "whisper-tiny"), "pick": ("moonshine", "whisper-tiny")}
DEFAULT_RUN = [name for name in CANDIDATES if name not in DERIVED]
QUESTION_SECONDS = 3.5  # a typical spoken question: what a slower final transcript adds to it
ORIGINAL, TELEPHONE, NOISY = "original", "telephone-8k", "noise-10db"
# The original as the page's microphone sends it (Chromium, voxloop.js): a door of its own,
# reported beside the columns above and not pooled into them. "0" leaves it out (no Chromium).
BROWSER = "browser"
BROWSER_ENV = "VOXLOOP_BENCH_STT_BROWSER"
TELEPHONE_OPTIONS = ["-af", "highpass=f=300,lowpass=f=3400", "-ar", "8000", "-c:a", "pcm_mulaw"]
REAL, SYNTHETIC = "real", "synthetic"
FRAME_SAMPLES = 320  # 20 ms at 16 kHz: frames for the active speech level
ACTIVE_FRAME_SHARE = 0.01  # frames above this share of the loudest frame's power are speech
SAMPLE_RATE = 16000


@suite("stt")
def stt(settings: Settings) -> dict[str, Any]:
    """WER per source, speaker split and variant, and speed, for every candidate."""
    data = json.loads(data_file(CLIPS).read_text(encoding="utf-8"))
    items = prepare(settings, data)
    names = _chosen_candidates()
    runs = {name: _isolated(run_candidate, settings, name, items) for name in names}
    runs.update(derive(settings, runs))
    return report(data, items, runs)


def report(
    data: dict[str, Any], items: list[dict[str, Any]], runs: dict[str, Any]
) -> dict[str, Any]:
    """The suite's JSON: the set, a summary per candidate, every transcript."""
    summary = {name: summarize(items, run) for name, run in runs.items()}
    fastest = summary.get("moonshine", {}).get("rtf")
    for figures in summary.values():
        if fastest is not None and figures["rtf"] is not None:
            added = (figures["rtf"] - fastest) * QUESTION_SECONDS
            figures["added_ms_per_question_vs_moonshine"] = _ms(added)
    return {
        "clips": len([clip for clip in data["clips"] if not clip.get("excluded")]),
        "excluded": len([clip for clip in data["clips"] if clip.get("excluded")]),
        "speakers": len(
            {(item["source"], item["speaker"]) for item in items if item["column"] == REAL}
        ),
        "held_out_speakers": data["held_out_speakers"],
        "items": len(items),
        "audio_seconds": round(sum(item["seconds"] for item in items), 1),
        "summary": summary,
        "runs": runs,
    }


def _chosen_candidates() -> list[str]:
    chosen = [n for n in os.environ.get(CANDIDATES_ENV, "").split(",") if n]
    unknown = set(chosen) - set(CANDIDATES)
    if unknown:
        raise VoxloopError(f"Unknown STT candidates {sorted(unknown)}: see {sorted(CANDIDATES)}.")
    return chosen or DEFAULT_RUN


def prepare(settings: Settings, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every clip as 16 kHz WAV files, once: original, telephone band, with noise; voices."""
    out = settings.cache_dir / "bench-stt"
    out.mkdir(parents=True, exist_ok=True)
    noises = [load_clip(path) for path in data["noise"]["paths"]]
    items = []
    for clip in progress(data["clips"], "stt preparing clips", "clip"):
        if clip.get("excluded"):  # its source's text is not what is said (see clips.json)
            continue
        original = out / f"{clip['id']}.{ORIGINAL}.wav"
        if not original.exists():
            _write_wav(original, load_clip(clip["path"]))
        telephone = out / f"{clip['id']}.{TELEPHONE}.wav"
        if not telephone.exists():
            _ffmpeg(["-i", str(original), *TELEPHONE_OPTIONS], telephone)
        noisy = out / f"{clip['id']}.{NOISY}.wav"
        if not noisy.exists():
            noise = noises[_pick(clip["id"], len(noises))]
            offset = _pick(clip["id"], len(noise))
            _write_wav(noisy, mix(load_clip(str(original)), noise, data["noise"]["snr_db"], offset))
        for variant, path in ((ORIGINAL, original), (TELEPHONE, telephone), (NOISY, noisy)):
            items.append(_item(clip, REAL, variant, path))
    items.extend(_synthetic(out, data["synthetic"]))
    if os.environ.get(BROWSER_ENV, "1") != "0":
        items.extend(_through_browser(out, [i for i in items if i["variant"] == ORIGINAL]))
    return items


def _through_browser(out: Path, originals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every original as the page's microphone sends it, captured once (in real time)."""
    from voxloop_bench.browser_microphone import capture

    paths = [out / f"{item['id']}.{BROWSER}.wav" for item in originals]
    missing = [(item, path) for item, path in zip(originals, paths, strict=True)
               if not path.exists()]  # fmt: skip
    if missing:
        heard = capture([load_clip(item["path"]) for item, _ in missing])
        for (_, path), samples in zip(missing, heard, strict=True):
            _write_wav(path, samples)
    return [{**item, "variant": BROWSER, "path": str(path)}
            for item, path in zip(originals, paths, strict=True)]  # fmt: skip


def _item(clip: dict[str, Any], column: str, variant: str, path: Path) -> dict[str, Any]:
    samples = load_clip(str(path))
    return {
        "id": clip["id"],
        "source": clip["source"],
        "speaker": clip["speaker"],
        "split": clip.get("split", "held-out"),
        "column": column,
        "variant": variant,
        "path": str(path),
        "text": clip["transcript"],
        "context": clip.get("context", ""),
        "seconds": round(len(samples) / SAMPLE_RATE, 3),
    }


def _synthetic(out: Path, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each voice saying each everyday sentence (flite's voices, festival)."""
    items = []
    for voice in spec["voices"]:
        for number, sentence in enumerate(spec["sentences"]):
            path = out / f"{voice}-{number:02d}.wav"
            if not path.exists():
                raw = out / f"{voice}-{number:02d}.raw.wav"
                _speak(voice, sentence, raw)
                _write_wav(path, load_clip(str(raw)))
                raw.unlink()
            clip = {
                "id": f"{voice}-{number:02d}",
                "source": voice,
                "speaker": voice,
                "split": SYNTHETIC,
                "transcript": sentence,
            }
            items.append(_item(clip, SYNTHETIC, ORIGINAL, path))
    return items


def _speak(voice: str, text: str, out: Path) -> None:
    engine, _, name = voice.partition("-")
    if not shutil.which(engine):
        raise VoxloopError(f"{engine} is not installed: `apt-get install {engine}`.")
    if engine == "flite":
        command = ["flite", "-voice", name, "-t", text, "-o", str(out)]
        subprocess.run(command, check=True, capture_output=True)
    else:  # festival's text2wave with one of its diphone voices ('ked': festvox-kdlpc16k)
        command = ["text2wave", "-eval", f"(voice_{name}_diphone)", "-o", str(out)]
        subprocess.run(command, input=text.encode(), check=True, capture_output=True)


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float, offset: int) -> np.ndarray:
    """`speech` with `noise` (looped from `offset`) at `snr_db` below its active speech level."""
    looped = np.resize(np.roll(noise, -offset), len(speech))
    gain = np.sqrt(_active_power(speech) / max(_active_power(looped), 1e-12))
    mixed = speech + looped * gain * 10 ** (-snr_db / 20)
    peak = float(np.max(np.abs(mixed))) or 1.0
    return mixed / max(peak, 1.0)  # no clipping: scale down only when over full scale


def _active_power(x: np.ndarray) -> float:
    """Mean power of the frames that carry sound (pauses left out)."""
    frames = x[: len(x) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    power = (frames.astype(np.float64) ** 2).mean(axis=1)
    if power.size == 0:
        return float((x.astype(np.float64) ** 2).mean())
    return float(power[power >= power.max() * ACTIVE_FRAME_SHARE].mean())


def _pick(clip_id: str, choices: int) -> int:
    """A fixed choice for each clip (which noise, where in it): every clip hears another."""
    return int(hashlib.sha256(clip_id.encode()).hexdigest(), 16) % max(choices, 1)


def run_candidate(settings: Settings, name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Transcribe every item with one candidate (run in a fresh process: its own memory)."""
    from voxloop import audio
    from voxloop.stt import get_transcriber

    engine, changes, prompted = CANDIDATES[name]
    stt_settings = settings.stt.model_copy(update=changes)
    settings = settings.model_copy(update={"stt": stt_settings})
    started = time.perf_counter()
    transcriber = get_transcriber(settings, engine)
    transcriber.transcribe(np.zeros(SAMPLE_RATE, np.float32))  # first-call set-up is load time
    load = time.perf_counter() - started
    results = []
    for item in progress(items, f"stt {name}", "clip"):  # in its own process: one bar at a time
        if prompted and not item["context"]:
            continue  # the prompt candidate is measured on the dialogue lines only
        samples = audio.load(item["path"])
        started = time.perf_counter()
        transcript = transcriber.transcribe(samples, item["context"] if prompted else None)
        busy = time.perf_counter() - started
        results.append(
            {
                "id": item["id"],
                "variant": item["variant"],
                "text": transcript.text,
                "logprob": transcript.logprob,
                "busy_s": round(busy, 4),
            }
        )
    return {"load_ms": _ms(load), "peak_rss_mb": _peak_rss_mb(), "results": results}


def derive(settings: Settings, runs: dict[str, Any]) -> dict[str, Any]:
    """The runs of the combined engines, from the runs of the two engines they combine."""
    from voxloop import assets
    from voxloop.stt import Transcript
    from voxloop.stt.checked import is_sure, needs_second_opinion, prefer_careful, vocabulary

    known = vocabulary(assets.whisper_dir(settings.stt.whisper_model, settings.cache_dir))
    derived = {}
    for name, (fast_name, careful_name) in DERIVED.items():
        if name in runs or fast_name not in runs or careful_name not in runs:
            continue
        careful_by_key = {(r["id"], r["variant"]): r for r in runs[careful_name]["results"]}
        results = []
        for fast in runs[fast_name]["results"]:
            careful = careful_by_key[(fast["id"], fast["variant"])]
            heard = Transcript(careful["text"], logprob=careful["logprob"])
            if name == "checked":
                both = needs_second_opinion(fast["text"], known)
                first_busy = fast["busy_s"]
            else:
                both = not is_sure(heard)
                first_busy = careful["busy_s"]
            kept = careful if not both and name == "pick" else fast
            if both:
                kept = careful if prefer_careful(fast["text"], heard, known) else fast
            busy = fast["busy_s"] + careful["busy_s"] if both else first_busy
            results.append({**kept, "busy_s": round(busy, 4), "both": both})
        load = runs[fast_name]["load_ms"] + runs[careful_name]["load_ms"]
        rss = runs[fast_name]["peak_rss_mb"] + runs[careful_name]["peak_rss_mb"]
        derived[name] = {"load_ms": load, "peak_rss_mb": rss, "results": results, "derived": True}
    return derived


def summarize(items: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    """Pooled WER overall, per split, source, variant and voice; worst source; RTF."""
    from voxloop_bench.recordings import wer

    by_key = {(item["id"], item["variant"]): item for item in items}
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    busy = heard = 0.0
    for result in run["results"]:
        item = by_key.get((result["id"], result["variant"]))
        if item is None:  # a clip left out of the set since that run
            continue
        pair = (item["text"], result["text"])
        if item["variant"] == BROWSER:
            where = "voice" if item["column"] == SYNTHETIC else "source"
            for group in (item["column"], f"split:{item['split']}", f"{where}:{item['source']}"):
                groups[f"{group}/variant:{BROWSER}"].append(pair)
            groups[f"variant:{BROWSER}"].append(pair)
            continue
        if item["column"] == SYNTHETIC:
            groups["synthetic"].append(pair)
            groups[f"voice:{item['source']}"].append(pair)
            continue
        groups["real"].append(pair)
        groups[f"split:{item['split']}"].append(pair)
        groups[f"source:{item['source']}"].append(pair)
        groups[f"variant:{item['variant']}"].append(pair)
        groups[f"split:{item['split']}/variant:{item['variant']}"].append(pair)
        groups[f"source:{item['source']}/variant:{item['variant']}"].append(pair)
        if item["context"]:
            groups["dialogue"].append(pair)
        if item["variant"] == ORIGINAL:
            busy, heard = busy + result["busy_s"], heard + item["seconds"]
    rates = {group: round(wer(pairs), 4) for group, pairs in sorted(groups.items())}
    sources = {g: r for g, r in rates.items() if g.startswith("source:") and "/" not in g}
    worst = max(sources, key=lambda g: sources[g]) if sources else None
    both = [r["both"] for r in run["results"] if "both" in r]
    return {
        "wer": rates,
        "both_engines_share": round(sum(both) / len(both), 3) if both else None,
        "worst_source": worst,
        "worst_source_wer": sources.get(worst) if worst else None,
        "rtf": round(busy / heard, 4) if heard else None,
        "load_ms": run["load_ms"],
        "peak_rss_mb": run["peak_rss_mb"],
    }


def load_clip(path: str) -> np.ndarray:
    """A clip as 16 kHz mono float32, from a file path, `python:<package>/<file>`,
    `zip:<archive>!<member>`, headerless 16 kHz PCM (.raw) or raw G.722 (.g722)."""
    from voxloop import audio
    from voxloop.assets import package_dir

    if path.startswith("python:"):
        package, _, inner = path.removeprefix("python:").partition("/")
        return audio.load(package_dir(package) / inner)
    if path.startswith("zip:"):
        archive, _, member = path.removeprefix("zip:").partition("!")
        with zipfile.ZipFile(archive) as opened:
            return audio.load(opened.read(member))
    if path.endswith(".raw"):  # pocketsphinx-testdata: headerless 16 kHz 16-bit mono
        return audio.from_int16(Path(path).read_bytes())
    if path.endswith(".g722"):  # Asterisk's wideband prompts: no header for a probe to read
        pcm = _ffmpeg_pcm(["-f", "g722", "-i", path])
        return audio.from_int16(pcm)
    return audio.load(path)


def _ffmpeg_pcm(args: list[str]) -> bytes:
    from voxloop.audio import ffmpeg_exe

    command = [ffmpeg_exe(), "-nostdin", "-v", "error", *args, "-f", "s16le", "-ac", "1"]
    return subprocess.run([*command, "-ar", str(SAMPLE_RATE), "-"], capture_output=True,
                          check=True).stdout  # fmt: skip


def _write_wav(path: Path, samples: np.ndarray) -> None:
    from voxloop import audio

    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE)
        file.writeframes(audio.to_int16(samples).tobytes())


def _ffmpeg(args: list[str], out: Path) -> None:
    from voxloop.audio import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args, str(out)], check=True)
