"""The page's latency plot data: one stacked bar per turn whose height is the turn's total."""

from __future__ import annotations

from voxloop.app import PLOTTED_TURNS, SEGMENTS, latency_frame


def test_each_turn_is_a_bar_of_its_stages_as_tall_as_the_turn() -> None:
    turn = {"stt": 180.0, "llm_first_token": 350.0, "first_audio": 560.0, "total": 2000.0}
    frame = latency_frame([turn])
    assert frame is not None
    bar = frame[frame.turn == "1"]
    # the time each stage added, stacked from the last one up
    assert list(bar.stage) == list(reversed(SEGMENTS.values()))
    assert list(bar.ms) == [1440.0, 210.0, 170.0, 180.0]
    assert bar.ms.sum() == turn["total"]


def test_no_bar_before_the_first_turn_and_only_the_recent_turns() -> None:
    assert latency_frame([]) is None
    turns = [{"stt": 1.0, "total": float(n)} for n in range(1, PLOTTED_TURNS + 6)]
    frame = latency_frame(turns)
    assert frame is not None
    assert frame.turn.nunique() == PLOTTED_TURNS
    assert frame.turn.iloc[-1] == str(PLOTTED_TURNS + 5)  # numbered as the page counts turns
    # a stage that did not happen (a cancelled turn) is left out, not drawn as zero
    assert set(frame[frame.turn == "6"].stage) == {SEGMENTS["stt"], SEGMENTS["total"]}
