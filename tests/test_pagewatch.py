"""The page watchdog's decisions (castd/encoder/pagewatch.py), without a browser: facts in, a Cure out."""

import shutil
from pathlib import Path

from castd.encoder.pagewatch import HEALTHY_AFTER, Call, Cure, PageWatch


def probe(since: float) -> Call:
    return Call("probe", since, 5.0)


def test_a_call_answered_within_its_budget_is_no_hang():
    watch = PageWatch()
    assert watch.decide(100.0, None) is Cure.NONE
    assert watch.decide(104.9, probe(100.0)) is Cure.NONE
    assert watch.decide(106.0, None) is Cure.NONE
    assert watch.hangs == 0


def test_a_probe_past_its_budget_gets_a_new_browser_then_a_new_encoder():
    watch = PageWatch()
    assert watch.decide(105.0, probe(100.0)) is Cure.NEW_BROWSER
    assert watch.hangs == 1 and "probe" in watch.reason and "5.0s" in watch.reason
    # the same blocked call is not cured twice at once: its time counts again from the cure
    assert watch.decide(106.0, probe(100.0)) is Cure.NONE
    # the new browser's load hangs too
    load = Call("page load", 107.0, 25.0)
    assert watch.decide(131.9, load) is Cure.NONE
    assert watch.decide(132.0, load) is Cure.NEW_ENCODER
    assert watch.hangs == 2


def test_a_call_still_blocked_a_budget_after_the_cure_escalates():
    watch = PageWatch()
    assert watch.decide(105.0, probe(100.0)) is Cure.NEW_BROWSER
    assert watch.decide(109.9, probe(100.0)) is Cure.NONE
    assert watch.decide(110.0, probe(100.0)) is Cure.NEW_ENCODER


def test_a_page_that_answered_for_a_minute_after_a_cure_starts_again_at_the_first_step():
    watch = PageWatch()
    assert watch.decide(105.0, probe(100.0)) is Cure.NEW_BROWSER
    watch.decide(105.0 + HEALTHY_AFTER - 1, None)
    watch.decide(105.0 + HEALTHY_AFTER, None)  # answered (no call outstanding) a minute after the cure
    since = 105.0 + HEALTHY_AFTER + 1
    assert watch.decide(since + 5.0, probe(since)) is Cure.NEW_BROWSER
    assert watch.hangs == 2


def test_a_hang_soon_after_a_cure_is_not_forgiven():
    watch = PageWatch()
    assert watch.decide(105.0, probe(100.0)) is Cure.NEW_BROWSER
    watch.decide(120.0, None)  # answered, but only 15 s after the cure
    assert watch.decide(130.0, probe(125.0)) is Cure.NEW_ENCODER


def test_cure_values_are_the_ones_the_protocol_carries():
    from typing import get_args

    from castd.protocol import HangCure

    assert {cure.value for cure in Cure if cure is not Cure.NONE} == set(get_args(HangCure))


# ---- the supervisor's side, with a fake encoder child (tests/fakechild.py) ----------------------------
def test_the_supervisor_counts_a_hung_page_shows_it_until_it_loads_and_restarts_on_the_last_step(tmp_path):
    from castd.children import exits
    from castd.protocol import Failed, PageHung, PageLoaded
    from fakechild import Rig

    rig = Rig(tmp_path)
    rig.streaming()
    first = rig.encoder
    nav, url = rig.sup.wanted.nav, rig.sup.wanted.url
    first.say(PageHung(nav=nav, url=url, reason="the browser did not answer a probe for 5.0s", cure="new_browser"))
    rig.step()
    assert rig.status.page == "hung" and rig.status.page_hangs == 1 and rig.status.state == "streaming"
    assert "page hung" in rig.status.last_error and len(rig.encoders) == 1
    first.say(PageLoaded(nav=nav, url=url, seconds=1.2))  # the new browser shows the page
    rig.step()
    assert rig.status.page == "loaded" and rig.status.page_hangs == 1
    first.say(PageHung(nav=nav, url=url, reason="the browser did not answer a probe for 5.0s", cure="new_encoder"),
              Failed(error="page hung again after a new browser", code="page_hung"))
    first.exit(exits.CRASHED)
    rig.step(passes=2)
    assert rig.status.page_hangs == 2 and len(rig.encoders) == 2 and rig.encoder.alive
    assert rig.status.session == rig.acks[0].session and rig.status.restarts == 1
    assert rig.encoder.params.tmp_dir != first.params.tmp_dir


def test_the_supervisor_sweeps_what_a_dead_encoder_left_in_its_tmp_folder(tmp_path):
    from fakechild import Rig

    rig = Rig(tmp_path)
    rig.streaming()
    first = rig.encoder
    left = [first.params.tmp_dir, str(rig.sup.tmp_root / "0123456789ab")]  # its own, and an older one's
    for folder in left:
        (Path(folder) / "org.chromium.Chromium.x").mkdir(parents=True)
    try:
        first.exit(-9)  # SIGKILL: it removed nothing itself
        rig.step(passes=2)
        assert len(rig.encoders) == 2
        assert not any(Path(folder).exists() for folder in left)
    finally:
        shutil.rmtree(rig.sup.tmp_root, ignore_errors=True)


def test_a_child_that_gave_its_last_words_gets_the_quit_grace_to_end_before_the_stall_watchdog(tmp_path):
    """A child giving up (a hung page's last step) ends its helpers and removes its files: under load that
    took longer than frame_stall_seconds, and the stall kill then hid the real reason (page_hung)."""
    from castd.children import exits
    from castd.protocol import ENCODER_QUIT_GRACE, Failed
    from fakechild import Rig

    rig = Rig(tmp_path, frame_stall_seconds=1.0, segment_stall_seconds=1.0)
    rig.streaming()
    first = rig.encoder
    first.say(Failed(error="page hung again after a new browser", code="page_hung"))
    rig.step()
    rig.step(seconds=ENCODER_QUIT_GRACE - 0.5)  # silent far past the stall limits, but ending
    assert first.alive and not first.killed
    first.exit(exits.CRASHED)
    rig.step(passes=2)
    assert "page hung" in rig.status.last_error and "stalled" not in rig.status.last_error
    assert len(rig.encoders) == 2
    rig.encoder.say(Failed(error="gone quiet"))
    rig.step()
    rig.step(seconds=ENCODER_QUIT_GRACE + 0.1)  # and one that never exits is killed after the grace
    assert rig.encoder.killed
