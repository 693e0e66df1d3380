"""The page's latency readout: one turn's stage timings as a line, and recent turns as a plot."""

from __future__ import annotations

from typing import Any

import pandas as pd

STAGES = {
    "stt": "STT",
    "llm_first_token": "first token",
    "first_audio": "first audio",
    "total": "total",
}
# What each stage adds, in the order it happens (for the stacked latency plot).
SEGMENTS = {
    "stt": "speech to text",
    "llm_first_token": "first token",
    "first_audio": "audio starts",
    "total": "rest of the reply",
}
SEGMENT_COLORS = dict(
    zip(SEGMENTS.values(), ["#0f766e", "#d97706", "#dc2626", "#94a3b8"], strict=True)
)
PLOTTED_TURNS = 20
STREAMED = "transcribed while you spoke"  # the record button's stream had the transcript ready

Timings = list[dict[str, float]]  # each turn's stage timings, for the latency plot


def latency_text(number: int, timings_ms: dict[str, float], note: str = "") -> str:
    """One turn's breakdown, e.g. 'Turn 2: STT 180 ms · first token 330 ms · ...', and a
    `note` on how the turn went, if any."""
    parts = [
        f"{label} **{timings_ms[stage]:.0f} ms**"
        for stage, label in STAGES.items()
        if stage in timings_ms
    ]
    return f"Turn {number}: " + " · ".join([*parts, *([note] if note else [])])


def latency_frame(timings: Timings) -> pd.DataFrame | None:
    """Recent turns as stacked segments: the top of "speaking starts" is the time to first audio.

    Stage stamps are cumulative (ms since the turn started); the plot shows the time each
    stage added, so a bar's height is the turn's total. None before the first turn (a plot
    that starts from an empty frame never draws its bars).
    """
    if not timings:
        return None
    rows: list[dict[str, Any]] = []
    first = max(1, len(timings) - PLOTTED_TURNS + 1)
    for number, stamps in enumerate(timings[-PLOTTED_TURNS:], start=first):
        previous, turn_rows = 0.0, list[dict[str, Any]]()
        for stage, label in SEGMENTS.items():
            if stage in stamps:
                turn_rows.append(
                    {"turn": str(number), "stage": label, "ms": max(0.0, stamps[stage] - previous)}
                )
                previous = stamps[stage]
        rows += reversed(turn_rows)  # the plot stacks a turn's rows from the last one up
    frame = pd.DataFrame(rows, columns=["turn", "stage", "ms"])
    return frame.astype({"turn": str, "stage": str, "ms": float})
