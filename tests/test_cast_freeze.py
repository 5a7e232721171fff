"""The freeze verdict (castd/cast/freeze.py), driven directly with made-up times: no device, no clock."""

from __future__ import annotations

from castd.cast.freeze import FreezeWatch, Verdict


def playing_from(t0: float = 100.0, stall: float = 5.0) -> FreezeWatch:
    watch = FreezeWatch(stall_seconds=stall, poll=1.0)
    watch.seen(t0, "BUFFERING", 0.0)  # the LOAD's answer
    watch.seen(t0 + 0.5, "PLAYING", 0.0)
    return watch


def test_before_the_first_playing_the_watch_only_asks():
    watch = FreezeWatch(stall_seconds=5.0)
    watch.seen(0.0, "BUFFERING", 0.0)
    assert watch.decide(0.5) is Verdict.FINE
    assert watch.decide(60.0) is Verdict.ASK  # never STUCK: the LOAD's own deadline covers a player that never starts
    watch.asked(60.0)
    watch.seen(60.1, "BUFFERING", 0.0)
    assert watch.decide(60.2) is Verdict.FINE


def test_a_player_that_advances_is_fine_and_is_asked_every_poll():
    watch = playing_from()
    assert watch.decide(100.6) is Verdict.FINE
    assert watch.decide(101.5) is Verdict.ASK
    watch.asked(101.5)
    assert watch.decide(102.0) is Verdict.FINE
    for i in range(2, 30):
        watch.seen(100.5 + i, "PLAYING", float(i))
        assert watch.decide(100.5 + i) is Verdict.FINE
    assert watch.media_time == 29.0 and watch.advanced_media_time == 29.0


def test_buffering_past_the_window_is_stuck_and_a_shorter_stall_is_not():
    watch = playing_from()
    watch.seen(101.5, "PLAYING", 1.0)
    watch.seen(102.0, "BUFFERING", 1.4)  # a 1 s stall, as Shaka had at a live start
    watch.seen(103.0, "PLAYING", 1.4)
    watch.seen(104.0, "PLAYING", 2.4)
    assert watch.decide(104.0) is Verdict.FINE
    watch.seen(105.0, "PLAYING", 3.0)
    for t in (105.5, 106.0, 107.0, 108.0, 109.0, 109.9):
        watch.seen(t, "BUFFERING", 3.0)
        assert watch.decide(t) is Verdict.FINE, t  # under 5 s without movement: inside the window
    watch.seen(110.0, "BUFFERING", 3.0)
    assert watch.decide(110.0) is Verdict.STUCK_BUFFERING
    assert watch.still_for(110.0) == 5.0


def test_buffering_with_currenttime_jumping_ahead_is_still_stuck():
    """A starved Shaka moves currentTime on in jumps as the live window slides (measured +3.5 s every 3.5 s)."""
    watch = playing_from()
    watch.seen(101.5, "PLAYING", 1.0)
    watch.seen(102.5, "BUFFERING", 1.9)
    watch.seen(106.0, "BUFFERING", 5.4)
    assert watch.decide(106.0) is Verdict.FINE
    watch.seen(107.5, "BUFFERING", 8.9)
    assert watch.decide(107.5) is Verdict.STUCK_BUFFERING
    assert watch.advanced_media_time == 1.0  # the jumps are not playback


def test_playing_with_a_still_clock_is_frozen():
    watch = playing_from()
    watch.seen(101.5, "PLAYING", 1.0)
    for t in (102.5, 103.5, 104.5, 105.5):
        watch.seen(t, "PLAYING", 1.02)  # within the epsilon: no movement
        assert watch.decide(t) is Verdict.FINE
    watch.seen(106.5, "PLAYING", 1.0)
    assert watch.decide(106.5) is Verdict.FROZEN


def test_no_answer_is_no_evidence():
    watch = playing_from()
    watch.seen(101.0, "PLAYING", 0.5)
    watch.asked(102.0)
    # the device stops answering: castd asks again, but never calls it frozen without a status
    assert watch.decide(103.0) is Verdict.ASK
    watch.asked(103.0)
    assert watch.decide(200.0) is Verdict.ASK


def test_a_viewer_pause_is_not_a_freeze_and_a_resume_gets_the_full_window():
    watch = playing_from()
    watch.seen(101.0, "PLAYING", 0.5)
    watch.seen(102.0, "PAUSED", 1.5)
    assert watch.decide(500.0) is Verdict.FINE  # paused for minutes: nothing asked, nothing reloaded
    watch.seen(500.0, "PLAYING", 1.5)  # resumed, at the same position
    watch.seen(503.0, "PLAYING", 1.5)
    assert watch.decide(503.0) is Verdict.FINE
    watch.seen(505.0, "PLAYING", 1.5)
    assert watch.decide(505.0) is Verdict.FROZEN


def test_a_new_load_resets_the_watch():
    watch = playing_from()
    watch.seen(107.0, "BUFFERING", 0.0)
    assert watch.decide(107.0) is Verdict.STUCK_BUFFERING
    watch.reset()
    assert watch.decide(107.1) is Verdict.ASK  # nothing known of the new player yet
    watch.seen(108.0, "BUFFERING", 0.0)
    assert watch.decide(108.5) is Verdict.FINE
    watch.seen(120.0, "BUFFERING", 0.0)
    assert watch.decide(120.0) is Verdict.FINE  # not yet played: the LOAD's deadline judges
