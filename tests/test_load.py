"""The load benchmark's client, briefly: eight clients at once against a real `voxloop serve`
get answers or a clear "busy", never an error (timings are for `voxloop bench load`)."""

from __future__ import annotations

from pathlib import Path

from servers import serve_process
from voxloop.bench import measure_load

CLIENTS = 8
SECONDS = 20


def test_eight_clients_at_once_get_answers_or_busy(spoken, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    questions = [spoken(q).read_bytes() for q in ("What is two plus two?", "Name a colour.")]
    with serve_process(tmp_path, VOXLOOP_SERVER__MAX_WAITING="4") as (url, process):
        report = measure_load(url.rstrip("/"), questions, CLIENTS, SECONDS, process.pid)
    assert report["errors"] == 0, report["error_messages"]
    assert report["turns_answered"] >= CLIENTS, report
    assert report["busy"] > 0, "2 workers + 4 waiting cannot take 8 clients: some hear busy"
    assert report["server_peak_rss_mb"] > 100
