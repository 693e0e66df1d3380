"""The load benchmark's client, briefly: eight clients at once against a real `voxloop serve`
get answers or a clear "busy", never an error (timings are for `voxloop bench load`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from servers import serve_process
from voxloop import assets
from voxloop.config import Settings
from voxloop_bench import measure_load, sound_gaps

CLIENTS = 8
SECONDS = 20
WORKERS = 2
WAITING = 4
BYTES_PER_MB = 1024 * 1024


def test_eight_clients_at_once_get_answers_or_busy(
    settings: Settings,
    spoken,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    questions = [spoken(q).read_bytes() for q in ("What is two plus two?", "Name a colour.")]
    limits = {"VOXLOOP_SERVER__WORKERS": str(WORKERS), "VOXLOOP_SERVER__MAX_WAITING": str(WAITING)}
    with serve_process(tmp_path, **limits) as (url, process):
        report = measure_load(url.rstrip("/"), questions, CLIENTS, SECONDS, process.pid)
    assert report["errors"] == 0, report["error_messages"]
    # Every request the server took in is answered, however slow the machine: at least the
    # first wave's workers and waiting room (how many more fit in the time is a benchmark's).
    assert report["turns_answered"] >= WORKERS + WAITING, report
    assert report["busy"] > 0, "2 workers + 4 waiting cannot take 8 clients: some hear busy"
    # The server's own memory was measured: it holds the language model it answered with.
    model = assets.gguf_path(settings.llm.model, settings.cache_dir)
    assert report["server_peak_rss_mb"] > model.stat().st_size / BYTES_PER_MB, report


def test_conversations_at_a_persons_pace_wait_for_the_answer_before_speaking_again(
    spoken,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    questions = [spoken(q).read_bytes() for q in ("What is two plus two?", "Name a colour.")]
    speaking = [1.0, 1.0]
    with serve_process(tmp_path) as (url, process):
        report = measure_load(url.rstrip("/"), questions, 2, SECONDS, process.pid, speaking)
    assert report["paced"] and report["errors"] == 0 and report["busy"] == 0, report
    # Each of the two speaks (1 s), is answered, listens to the spoken answer and pauses (2 s):
    # at most one turn per 3 s each, however fast the machine.
    assert 2 <= report["turns_answered"] <= 2 * (SECONDS // 3 + 1), report


def test_the_silence_heard_in_a_streamed_reply_is_what_came_late() -> None:
    # (arrived, seconds of sound) per chunk, played from the first one
    assert sound_gaps([(0.0, 1.0), (0.9, 1.0), (1.0, 2.0)]) == 0.0  # each before it is needed
    # needed at 1.0 s, came at 1.5; then needed at 2.5 s (the silence delayed it), came at 3.5
    assert sound_gaps([(0.0, 1.0), (1.5, 1.0), (3.5, 1.0)]) == pytest.approx(0.5 + 1.0)
    # 0.5 s late, then early enough again: only the first silence counts
    assert sound_gaps([(0.0, 2.0), (2.5, 1.0), (3.0, 1.0)]) == pytest.approx(0.5)
    assert sound_gaps([]) == 0.0
