"""The page watchdog's decisions (castd/encoder/pagewatch.py), without a browser: facts in, a Cure out."""

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
