"""castd/cast/takeover.py, the sharing decisions, tested directly: the README's decision table row by row,
the reading of receiver statuses, the pacing of re-LOADs over the idle screen, and a randomized run of
500 app switches, standby flips and starts."""

from __future__ import annotations

import random

import pytest

from castd.cast.takeover import Act, Facts, Policy, Sharer, facts_of
from castd.sharing import Sharing

OURS = "castd-session"
FREE = Facts()
IDLE_SCREEN = Facts(idle_screen=True)
NETFLIX = Facts(app_id="CA5E8412", app_name="Netflix")
CASTD = Facts(app_id="CC1AD845", app_name="Default Media Receiver", ours=True)
STANDBY = Facts(standby=True)
OTHER_INPUT = Facts(inactive=True)
CASTD_STANDBY = Facts(app_id="CC1AD845", app_name="Default Media Receiver", ours=True, standby=True)

ALWAYS, WHEN_IDLE = Policy(), Policy(takeover="when-idle")
STICKY, NO_WAKE = Policy(takeover="when-idle", sticky=True), Policy(wake=False)


def held(policy: Policy) -> Sharer:
    """castd's picture has been on the TV this session."""
    sharer = Sharer(policy)
    assert sharer.decide(0.0, CASTD).act is Act.CAST
    return sharer


# (policy, castd's picture was on the TV, the TV now) -> (act, state, words in the reason)
TABLE = [
    (ALWAYS, False, FREE, Act.CAST, None, ""),
    (ALWAYS, False, IDLE_SCREEN, Act.CAST, None, ""),
    (ALWAYS, False, NETFLIX, Act.CAST, None, ""),  # today's: takes the TV
    (ALWAYS, False, STANDBY, Act.CAST, None, ""),  # a LAUNCH wakes a CEC TV
    (WHEN_IDLE, False, FREE, Act.CAST, None, ""),
    (WHEN_IDLE, False, IDLE_SCREEN, Act.CAST, None, ""),
    (WHEN_IDLE, False, CASTD, Act.CAST, None, ""),  # castd's own session counts as free
    (WHEN_IDLE, False, NETFLIX, Act.WAIT, "waiting", "Netflix is on the device"),
    (NO_WAKE, False, STANDBY, Act.WAIT, "waiting", "standby"),
    (NO_WAKE, False, OTHER_INPUT, Act.WAIT, "waiting", "another input"),
    (ALWAYS, True, NETFLIX, Act.STEP_ASIDE, "other_app", "Netflix took over"),
    (WHEN_IDLE, True, NETFLIX, Act.STEP_ASIDE, "other_app", "Netflix took over"),
    (STICKY, True, NETFLIX, Act.WAIT, "waiting", "castd comes back when it quits"),
    (ALWAYS, True, FREE, Act.STEP_ASIDE, "user_stopped", "castd's app was closed"),
    (STICKY, True, FREE, Act.CAST, None, ""),  # sticky: a free TV gets castd back
    (ALWAYS, True, IDLE_SCREEN, Act.CAST, None, "idle screen"),  # covered: re-LOAD
    (ALWAYS, True, CASTD_STANDBY, Act.CAST, None, "standby"),  # ambient/standby over castd: re-LOAD (wakes)
    (NO_WAKE, True, CASTD_STANDBY, Act.WAIT, "waiting", "wake = false"),
]


@pytest.mark.parametrize("policy, was_on, facts, act, state, words", TABLE)
def test_the_decision_table(policy, was_on, facts, act, state, words):
    sharer = held(policy) if was_on else Sharer(policy)
    decision = sharer.decide(1.0, facts)
    assert (decision.act, decision.state) == (act, state), decision
    assert words in (decision.reason or ""), decision


def test_receiver_statuses_read_as_facts():
    status = {"applications": [{"appId": "E8C28D3C", "displayName": "Backdrop", "isIdleScreen": True}],
              "isStandBy": False, "isActiveInput": True}
    assert facts_of(status, OURS) == IDLE_SCREEN
    status = {"applications": [{"appId": "CA5E8412", "displayName": "Netflix", "sessionId": "n"}], "isStandBy": True}
    assert facts_of(status, OURS) == Facts(app_id="CA5E8412", app_name="Netflix", standby=True)
    status = {"applications": [{"appId": "CC1AD845", "displayName": "Default Media Receiver", "sessionId": OURS}],
              "isActiveInput": False}
    facts = facts_of(status, OURS)
    assert facts.ours and facts.inactive and not facts.busy
    assert not facts_of(status, None).ours and facts_of(status, None).busy  # another sender's receiver app
    assert facts_of({}, OURS) == FREE  # a TV that says nothing of CEC counts as awake


def test_sharing_layers_resolve_nearest_first():
    request, board, config = Sharing(sticky=True), Sharing(takeover="when-idle", sticky=False), Sharing(wake=False)
    assert request.over(board).over(config) == Sharing(takeover="when-idle", sticky=True, wake=False)
    assert Policy.of(Sharing()) == Policy()  # the defaults: today's behaviour
    assert Policy.of(request.over(board).over(config)) == Policy("when-idle", True, False)


def test_sticky_comes_back_twice_and_steps_aside_each_time():
    sharer = held(STICKY)
    for round_ in range(2):
        assert sharer.decide(10.0 + round_, Facts(app_id="233637DE", app_name="YouTube")).act is Act.WAIT
        back = sharer.decide(11.0 + round_, IDLE_SCREEN)  # YouTube quit to the idle screen
        assert back.act is Act.CAST and back.at is None and "comes back" in (back.reason or "")
        assert sharer.decide(11.5 + round_, CASTD).act is Act.CAST
    assert sharer.covered == 0  # coming back is no re-LOAD of a covered session


def test_a_step_aside_is_final_for_the_session():
    sharer = held(WHEN_IDLE)
    assert sharer.decide(1.0, NETFLIX).act is Act.STEP_ASIDE
    assert sharer.decide(2.0, FREE).act is Act.STEP_ASIDE  # Netflix quit: castd stays away without sticky
    viewer = held(STICKY)
    viewer.stopped_by_viewer("user_stopped", "playback was stopped on the device (CANCELLED)")
    assert viewer.decide(3.0, FREE).act is Act.STEP_ASIDE  # a stop on the remote is final even when sticky


def test_the_idle_screen_is_reloaded_at_once_then_paced():
    sharer = held(ALWAYS)
    now, delays = 100.0, []
    for _ in range(7):
        decision = sharer.decide(now, IDLE_SCREEN)
        assert decision.act is Act.CAST and decision.reload and decision.at is not None
        assert sharer.decide(now + 0.1, IDLE_SCREEN).at == decision.at  # asking again does not move it
        delays.append(decision.at - now)
        now = decision.at
        sharer.reloaded(now)
        assert sharer.decide(now + 0.5, CASTD) == sharer.decide(now + 0.5, CASTD)
        now += 1.0
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0] and sharer.covered == 7
    later = sharer.decide(now + 61.0, IDLE_SCREEN)  # a minute of peace: at once again
    assert later.at == now + 61.0


def test_500_random_switches_never_cast_over_another_app_and_never_leave_a_sticky_tv_free():
    """App switches, standby flips and new sessions in random order, against every policy."""
    rng = random.Random(20)
    apps = [("233637DE", "YouTube"), ("CA5E8412", "Netflix"), ("CC32E753", "Spotify (group)"), ("timer", "Timer")]
    counts = {act: 0 for act in Act}
    for policy in [Policy(t, s, w) for t in ("always", "when-idle") for s in (False, True) for w in (False, True)]:
        sharer, now, facts = Sharer(policy), 0.0, FREE
        for _ in range(500):
            now += rng.uniform(0.05, 5.0)
            event = rng.random()
            if event < 0.35:
                app_id, name = rng.choice(apps)
                facts = Facts(app_id=app_id, app_name=name, standby=facts.standby)
            elif event < 0.55:
                facts = Facts(idle_screen=rng.random() < 0.5, standby=facts.standby)
            elif event < 0.75:
                facts = Facts(app_id=facts.app_id, app_name=facts.app_name, ours=facts.ours,
                              idle_screen=facts.idle_screen, standby=not facts.standby)
            elif event < 0.8:
                sharer = Sharer(policy)  # a new session: it starts afresh on whatever the TV shows
            decision = sharer.decide(now, facts)
            counts[decision.act] += 1
            if policy.takeover == "when-idle" and facts.busy:
                assert decision.act is not Act.CAST, (policy, facts, decision)
            if facts.asleep and not policy.wake and not facts.ours:
                assert decision.act is not Act.CAST, (policy, facts, decision)
            if policy.sticky and not facts.busy and not (facts.asleep and not policy.wake):
                assert decision.act is Act.CAST, (policy, facts, decision)
                assert decision.at is None or decision.at - now <= 30.0
                if not decision.reload:
                    assert decision.at is None  # castd comes back at once
            if decision.act is Act.CAST and decision.at is not None and decision.at <= now:
                sharer.reloaded(now, facts)
            if decision.act is Act.CAST and (decision.at is None or decision.at <= now):
                facts = Facts(app_id="CC1AD845", app_name="Default Media Receiver", ours=True,
                              standby=facts.standby and not policy.wake)  # a LAUNCH wakes the TV
    assert all(counts.values()), counts  # every kind of decision was exercised


def test_freezes_and_coverings_share_one_pace():
    """A TV that froze a moment ago and is then covered by its idle screen is re-LOADed after 1 s, not at once:
    every re-LOAD of a device counts, whatever its cause."""
    sharer = held(ALWAYS)
    assert sharer.frozen(100.0) == 0.0  # the first: at once
    assert sharer.frozen(110.0) == 1.0
    covered = sharer.decide(120.0, IDLE_SCREEN)
    assert covered.reload and covered.at == 122.0  # the third within a minute: 2 s
    sharer.reloaded(122.0)
    assert sharer.frozen(200.0) == 0.0  # a quiet minute forgives


def test_a_tv_that_stays_in_standby_after_the_wake_launch_is_not_reloaded_again():
    """A TV without working CEC keeps saying standby after castd's LAUNCH (or says so wrongly while on):
    one wake attempt, then castd plays on and asks nothing more until the TV reports itself awake."""
    sharer = held(ALWAYS)
    first = sharer.decide(10.0, CASTD_STANDBY)
    assert first.reload and first.at == 10.0
    sharer.reloaded(10.0, CASTD_STANDBY)
    for t in (11.0, 40.0, 100.0):
        again = sharer.decide(t, CASTD_STANDBY)
        assert again.act is Act.CAST and not again.reload, again
    assert sharer.decide(101.0, CASTD).act is Act.CAST  # awake
    assert sharer.decide(200.0, CASTD_STANDBY).reload  # a new standby: one more wake


URL = "http://castd/stream/s/index.m3u8"


@pytest.mark.parametrize("entry, loading, news", [
    ({"mediaSessionId": 7, "playerState": "PLAYING"}, False, "player"),
    ({"mediaSessionId": 7, "playerState": "IDLE", "idleReason": "CANCELLED"}, False, "viewer_stopped"),
    ({"mediaSessionId": 7, "playerState": "IDLE", "idleReason": "INTERRUPTED"}, False, "viewer_stopped"),
    ({"mediaSessionId": 7, "playerState": "IDLE", "idleReason": "ERROR"}, False, "receiver_ended"),
    ({"mediaSessionId": 7, "playerState": "IDLE", "idleReason": "FINISHED"}, False, "receiver_ended"),
    ({"mediaSessionId": 7, "playerState": "IDLE"}, True, "ignore"),  # a receiver passing through IDLE to load
    ({"mediaSessionId": 7, "playerState": "IDLE"}, False, "receiver_ended"),
    ({"mediaSessionId": 3, "playerState": "PLAYING", "media": {"contentId": "http://x/other"}}, False, "ignore"),
    ({"mediaSessionId": 9, "playerState": "PLAYING", "media": {"contentId": "http://youtube/x"}}, False,
     "other_sender"),
    ({"mediaSessionId": 9, "playerState": "IDLE", "media": {"contentId": "http://youtube/x"}}, False, "ignore"),
])
def test_media_status_entries_read_as_news(entry, loading, news):
    from castd.cast.takeover import News, read_media

    assert read_media(entry, 7, URL, {3}, loading) is News(news)


def test_castds_own_url_under_an_unknown_session_is_adopted():
    from castd.cast.takeover import News, read_media

    assert read_media({"mediaSessionId": 12, "playerState": "PLAYING", "media": {"contentId": URL}}, None, URL,
                      set(), False) is News.ADOPT
