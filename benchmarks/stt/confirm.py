"""Writes unconfirmed.json: clips whose source text no engine confirms on the original audio.

A clip's text is confirmed when at least one of Moonshine, Whisper tiny.en and Whisper base
transcribes its original recording within MAX_WER of it: the engines stand in for a listener,
and the source's own text stays the reference. Input: the runs of `voxloop bench stt` saved as
JSON (`python benchmarks/stt/confirm.py RUN.json`, its "runs" key).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from voxloop_bench.recordings import word_errors

HERE = Path(__file__).resolve().parent
ENGINES = ("moonshine", "whisper-tiny", "whisper-base")
MAX_WER = 0.35  # more than a third of the words wrong by every engine: the audio says other words


def main(path: str) -> None:
    """Find the unconfirmed clips and write them, with what each engine heard."""
    runs = json.loads(Path(path).read_text())["runs"]
    clips = {c["id"]: c for c in json.loads((HERE / "clips.json").read_text())["clips"]}
    heard: dict[str, dict[str, str]] = {}
    for engine in ENGINES:
        for result in runs[engine]["results"]:
            if result["variant"] == "original" and result["id"] in clips:
                heard.setdefault(result["id"], {})[engine] = result["text"]
    unconfirmed = {}
    for clip_id, texts in sorted(heard.items()):
        reference = clips[clip_id]["transcript"]
        rates = [_rate(reference, text) for text in texts.values()]
        if min(rates) > MAX_WER:
            unconfirmed[clip_id] = (
                f"no engine within {MAX_WER:.0%} of the text; heard: "
                + " | ".join(f"{engine}: {text}" for engine, text in texts.items())
            )
    (HERE / "unconfirmed.json").write_text(json.dumps(unconfirmed, indent=1) + "\n")
    print(f"{len(unconfirmed)} of {len(heard)} clips unconfirmed")


def _rate(reference: str, hypothesis: str) -> float:
    edits, words = word_errors(reference, hypothesis)
    return edits / max(words, 1)


if __name__ == "__main__":
    main(sys.argv[1])
