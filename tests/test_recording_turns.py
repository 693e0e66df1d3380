"""A long recording handed in as a turn: summarized with progress, spoken, stored in the
person's memory, and asked about in the next turns (the app's upload path)."""

from __future__ import annotations

from pathlib import Path

from voxloop.config import Settings
from voxloop.memory import Memory
from voxloop.pipeline import Pipeline
from voxloop.turns import Done, Speech, Turn, TurnRequest
from voxloop_bench import recordings

RECORDING_SECONDS = 60
QUESTION = "In the recording, it was the best of what?"
# Content words of the two_cities reading that are not in the question, nor words a reply
# that knows nothing of the recording would use ("hope", "light", "age" are left out).
READING_WORDS = {
    "times", "worst", "wisdom", "foolishness", "epoch", "belief", "incredulity", "season",
    "darkness", "spring", "winter", "despair", "heaven", "superlative",
}  # fmt: skip


def _run(pipeline: Pipeline, request: TurnRequest) -> tuple[Turn, list[Speech]]:
    events = list(pipeline.run(request))
    assert isinstance(events[-1], Done)
    return events[-1].turn, [e for e in events if isinstance(e, Speech)]


def test_a_recording_is_summarized_spoken_kept_and_asked_about(
    settings: Settings, tmp_path: Path
) -> None:
    path = recordings.long_recording(tmp_path / "talk.mp3", RECORDING_SECONDS)
    memory = Memory(tmp_path / "voxloop.db")
    pipeline = Pipeline(settings, memory)
    assert pipeline.is_long_recording(path)
    progress: list[float] = []
    turn, speech = _run(
        pipeline,
        TurnRequest(
            recording=path, session="s", progress=lambda done, _message: progress.append(done)
        ),
    )
    assert turn.recording is not None and turn.reply == turn.recording.summary
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) > 2
    assert speech and " ".join(turn.spoken).strip()  # the summary was spoken
    assert memory.latest_recording("s") is not None
    assert "talk.mp3" in memory.exchanges("s")[0][0]

    # A later turn of the same person is answered from the stored recording.
    pipeline.wait_for_upkeep()
    follow_up, _ = _run(
        pipeline,
        TurnRequest(text=QUESTION, session="s"),
    )
    # Words only the recording could have given: the answer came from it.
    assert set(recordings.normalize(recordings.TWO_CITIES)) >= READING_WORDS
    assert READING_WORDS & set(recordings.normalize(follow_up.reply)), follow_up.reply
    # Another person knows nothing of it: the same question gets none of the reading's words.
    assert memory.latest_recording("someone else") is None
    stranger, _ = _run(pipeline, TurnRequest(text=QUESTION, session="someone else"))
    assert not READING_WORDS & set(recordings.normalize(stranger.reply)), stranger.reply
