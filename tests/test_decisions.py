"""The deciding code on its own: the supervisor, casting, the restart policy, exit codes, the rate limiter,
driven with fake children (tests/fakechild.py) and a fake clock. Milliseconds each, no Chromium; the
end-to-end tests hold the same behaviour against the real children."""

from __future__ import annotations

import signal

import msgspec
import pytest

from castd.api.freshedge import FRESH_SHARE, SLACK, FreshEdge
from castd.api.ratelimit import TokenBucket
from castd.cast.link import RecentIds
from castd.cast.messages import CastStop, CastWant, DeviceReport
from castd.children import exits
from castd.children.liveness import Liveness
from castd.children.policy import RestartPolicy, RetryLater, Verdict
from castd.config import Config
from castd.presets import STREAM_FORMATS, StreamFormat, get_preset, segment_starts
from castd.protocol import (ENCODER_QUIT_GRACE, Begin, CastDevice, Failed, Navigate, PageFailed, PageLoaded, Park, Quit,
                            Shutdown, Stop, Timeline)
from castd.supervisor.slot import Phase
from fakechild import FakeClock, Rig


# ---- the supervisor -------------------------------------------------------------------------------
def test_newest_of_twenty_starts_wins_with_one_encoder(tmp_path):
    rig = Rig(tmp_path)
    for i in range(20):
        rig.start(url=f"http://a.example/{i}", quality=("720p", "low-latency")[i % 2])
    rig.step()
    assert len(rig.acks) == 20 and [a.seq for a in rig.acks] == list(range(1, 21))
    last = rig.acks[-1]
    assert len(rig.encoders) == 1, "one browser start for a burst"
    assert rig.encoder.params.session == last.session and rig.encoder.params.url == "http://a.example/19"
    assert rig.status.session == last.session and rig.status.state == "starting"
    assert rig.status.quality == "low-latency"


def test_acks_come_before_the_encoder_is_touched(tmp_path):
    rig = Rig(tmp_path)
    rig.start()
    rig.step()
    rig.encoder.frozen = True
    rig.start(quality="low-latency")  # a new size: the old child must end first
    rig.step()
    assert rig.acks[-1].ok and rig.sup.encoder.phase is Phase.ENDING
    assert len(rig.alive()) == 1 and len(rig.encoders) == 1, "the next child waits until the old one is reaped"


def test_a_start_with_the_same_quality_is_a_switch(tmp_path):
    rig = Rig(tmp_path)
    rig.streaming(url="http://a.example/1")
    rig.start(url="http://a.example/2")
    rig.step()
    assert rig.acks[-1].switched and rig.acks[-1].session == rig.acks[0].session
    assert len(rig.encoders) == 1
    assert rig.encoder.of(Navigate)[-1].url == "http://a.example/2" and rig.status.page == "loading"
    assert rig.status.state == "streaming"


def _snapshots_of_one_pass(rig) -> list:
    """Every snapshot the front end gets in one pass, in order (rig.status keeps only the last)."""
    from castd.protocol import Ack as AckMessage, Snapshot, event_decoder

    rig.sup.step()
    seen = []
    while rig.front.poll():
        message = event_decoder.decode(rig.front.recv_bytes())
        if isinstance(message, AckMessage):
            rig.acks.append(message)
        elif isinstance(message, Snapshot):
            seen.append(message.status)
    return seen


def test_every_snapshot_after_a_start_is_about_that_start(tmp_path):
    """`castd start --wait` reads only snapshots with seq >= its start's: those must not show the old page
    "loaded" on a switch (a switch to a failing page was reported as streaming), nor the old encoder's pid
    on a new session while the old child ends."""
    rig = Rig(tmp_path)
    rig.streaming(url="http://a.example/1")
    assert rig.status.page_shown and rig.status.seq == rig.acks[-1].seq
    rig.start(url="http://a.example/2")  # a switch
    after = [s for s in _snapshots_of_one_pass(rig) if s.seq >= rig.acks[-1].seq]
    assert after and all(s.page == "loading" and not s.page_shown for s in after), after
    rig.encoder.say(PageLoaded(nav=rig.sup.wanted.nav, url="http://a.example/2", seconds=0.1))
    rig.step()
    assert rig.status.page == "loaded" and not rig.status.page_shown  # loaded, not yet in a segment
    rig.stream()
    assert rig.status.page_shown
    old = rig.encoder
    old.frozen = True  # it takes its time to end
    assert old.pid is not None and rig.status.encoder_pid == old.pid
    rig.start(url="http://a.example/3", quality="low-latency")  # a new session
    after = [s for s in _snapshots_of_one_pass(rig) if s.seq >= rig.acks[-1].seq]
    assert after and all(s.session == rig.acks[-1].session for s in after)
    assert all(s.encoder_pid != old.pid for s in after), [s.encoder_pid for s in after]


def test_a_new_quality_waits_for_the_old_child_then_starts_at_zero(tmp_path):
    rig = Rig(tmp_path)
    rig.streaming()
    first = rig.encoder
    rig.start(quality="low-latency")
    rig.step()
    assert first.of(Quit) and not first.alive  # the fake quits at once
    rig.step()  # reaped, then the new one
    assert len(rig.encoders) == 2 and len(rig.alive()) == 1 and first.closed
    assert rig.encoder.params.timeline == Timeline(start=0.0, discontinuity=False)


def test_a_hung_child_is_killed_at_its_deadline_without_blocking(tmp_path):
    rig = Rig(tmp_path)
    rig.streaming()
    child = rig.encoder
    child.frozen = True
    rig.send(Stop(id="s"))
    rig.step()
    assert rig.acks[-1].stopped and rig.status.state == "stopping" and child.alive
    rig.step(seconds=ENCODER_QUIT_GRACE - 0.1)
    assert child.alive and not child.killed
    rig.step(seconds=0.2)  # past the grace (the child's own end takes up to 3 s: encoder/child.py)
    assert child.killed
    rig.step()
    assert rig.status.state == "idle" and rig.status.encoder_pid is None and child.closed


def test_stop_with_standby_parks_and_the_next_start_reuses_the_child(tmp_path):
    rig = Rig(tmp_path, standby="after-use")
    rig.streaming()
    child = rig.encoder
    rig.send(Stop(id="s"))
    rig.step()
    assert child.of(Park) and child.alive and rig.status.state == "idle" and rig.status.standby == "warm"
    rig.start(url="http://b.example/")
    rig.step()
    begin = child.of(Begin)[-1]
    assert len(rig.encoders) == 1 and begin.url == "http://b.example/"
    assert begin.timeline == Timeline(start=0.0, discontinuity=False), "a new session starts a new timeline"
    assert rig.status.state == "starting" and rig.status.standby is None
    rig.start(url="http://c.example/", quality="low-latency")  # the parked size does not fit: a new child
    rig.step(passes=3)
    assert len(rig.encoders) == 2 and len(rig.alive()) == 1


def test_boot_standby_starts_parked(tmp_path):
    rig = Rig(tmp_path, standby="boot")
    rig.step()
    assert rig.encoder.params.session is None and rig.status.standby == "warm" and rig.status.state == "idle"


def test_boot_standby_is_one_child_at_start_up_not_one_per_idle(tmp_path):
    rig = Rig(tmp_path, standby="boot")
    rig.start()  # a start before the first pass: no parked child first
    rig.step()
    rig.stream()
    rig.encoder.exit(exits.CANNOT_BOOT)
    rig.step(passes=3)
    assert rig.status.state == "retrying" and len(rig.encoders) == 1 and rig.status.standby is None


def test_a_restart_continues_the_session_timeline_after_a_break(tmp_path):
    rig = Rig(tmp_path)
    rig.start()
    rig.step()
    rig.stream(segments=12)
    rig.encoder.exit(-signal.SIGKILL)
    rig.step()
    assert rig.status.state == "starting" and "SIGKILL" in rig.status.last_error
    assert "perhaps out of memory" in rig.status.last_error
    rig.step(seconds=0.5)
    assert len(rig.encoders) == 2 and rig.status.restarts == 1
    assert rig.encoder.params.timeline == Timeline(start=12.0, discontinuity=True)
    assert rig.status.session == rig.acks[0].session


def test_failed_starts_back_off_then_give_up_for_good_when_retries_are_off(tmp_path):
    rig = Rig(tmp_path, max_restarts=4, retry_seconds=0)
    rig.start()
    rig.step()
    delays = []
    for _ in range(3):
        rig.encoder.say(Failed(error="page crashed"))
        rig.encoder.exit(exits.CRASHED)
        rig.step()
        before = len(rig.encoders)
        waited = 0.0
        while len(rig.encoders) == before and waited < 60:
            rig.step(seconds=0.25)
            waited += 0.25
        delays.append(waited)
    assert delays == [0.5, 1.0, 2.0]
    rig.encoder.exit(exits.CRASHED)
    rig.step()
    assert rig.status.state == "failed" and rig.status.restarts == 3
    assert "gave up" in rig.status.last_error and "crashed" in rig.status.last_error
    assert not rig.alive() and rig.sup.wanted is None
    rig.send(Stop(id="s"))
    rig.step()
    assert rig.status.state == "failed", "a stop of nothing keeps the failure shown"
    rig.start()
    rig.step()
    assert rig.status.state == "starting" and rig.status.restarts == 0 and rig.status.last_error is None


def give_up(rig, failures):
    """Make the wanted session's child fail `failures` starts in a row (each restart paced by the policy)."""
    for i in range(failures):
        before = len(rig.encoders)
        rig.encoder.say(Failed(error="connection refused"))
        rig.encoder.exit(exits.CRASHED)
        rig.step()
        if i < failures - 1:
            while len(rig.encoders) == before:
                rig.step(seconds=0.25)


def test_a_given_up_session_is_retried_later_with_backoff_until_a_stop(tmp_path):
    rig = Rig(tmp_path, max_restarts=2, retry_seconds=60)
    rig.start(devices=["tv1"])
    rig.step()
    give_up(rig, 2)
    status = rig.status
    assert status.state == "retrying" and status.retries == 1 and "connection refused" in status.last_error
    assert "gave up after 1 restarts" in status.last_error and "retrying in 60s" in status.last_error
    assert status.retry_at == pytest.approx(rig.clock.wall() + 60)
    assert not rig.alive() and rig.sup.wanted is not None, "still wanted, no child meanwhile"
    assert rig.workers[-1].of(CastStop), "the TV is released while nothing streams"
    spawned = len(rig.encoders)
    rig.step(seconds=59.5)
    assert len(rig.encoders) == spawned and rig.status.state == "retrying"
    rig.step(seconds=0.5)
    assert len(rig.encoders) == spawned + 1 and rig.status.state == "starting" and rig.status.retry_at is None
    assert rig.encoder.params.session == status.session, "the same session, the same stream URL"
    assert rig.status.restarts == 0, "a fresh round of quick restarts"
    assert rig.workers[-1].of(CastWant)[-1].session == status.session, "cast again"
    give_up(rig, 2)
    assert rig.status.state == "retrying" and rig.status.retries == 2
    assert rig.status.retry_at == pytest.approx(rig.clock.wall() + 120), "the second round waits twice as long"
    rig.send(Stop(id="person"))
    rig.step()
    assert rig.status.state == "idle" and rig.sup.wanted is None
    spawned = len(rig.encoders)
    rig.step(seconds=1000)
    assert len(rig.encoders) == spawned, "a person's stop ends the retries"


def test_a_retrying_session_ends_with_its_duration_and_comes_back_on_a_new_page(tmp_path):
    rig = Rig(tmp_path, max_restarts=1, retry_seconds=60)
    rig.start(duration=100)
    rig.step()
    give_up(rig, 1)
    assert rig.status.state == "retrying"
    rig.start(url="http://b.example/", duration=100)  # a person asks for another page: no waiting
    rig.step()
    assert rig.alive() and rig.encoder.params.url == "http://b.example/" and rig.status.state == "starting"
    give_up(rig, 1)
    rig.step(seconds=50)
    assert rig.status.state == "retrying"
    rig.step(seconds=51)
    assert rig.status.state == "idle" and not rig.alive(), "the duration ended while retrying"


def test_a_retry_that_streams_for_a_minute_forgives_the_earlier_rounds(tmp_path):
    rig = Rig(tmp_path, max_restarts=1, retry_seconds=10)
    rig.start()
    rig.step()
    for delay in (10, 20, 40):
        give_up(rig, 1)
        assert rig.status.retry_at == pytest.approx(rig.clock.wall() + delay)
        rig.step(seconds=delay)
    rig.stream()
    rig.run(61)
    rig.encoder.exit(exits.CRASHED)  # after a healthy minute: restarted at once, then fails to start
    rig.step(passes=2)
    give_up(rig, 1)
    assert rig.status.retry_at == pytest.approx(rig.clock.wall() + 10)


def test_retry_later_doubles_to_fifteen_minutes_and_never_retries_a_version_mismatch():
    retry = RetryLater(first=60)
    assert [retry.gave_up(exits.CRASHED) for _ in range(7)] == [60, 120, 240, 480, 900, 900, 900]
    retry.working(59)
    assert retry.rounds == 7
    retry.working(60)
    assert retry.gave_up(exits.CANNOT_BOOT) == 60, "a healthy minute forgives; a missing binary may come back"
    assert retry.gave_up(exits.VERSION_MISMATCH) is None
    assert RetryLater(first=0).gave_up(exits.CRASHED) is None, "retry_seconds = 0: a give-up is final"
    assert RetryLater(first=2, cap=900).gave_up(-signal.SIGKILL) == 2


def test_a_childs_words_reach_status_and_the_log_with_the_sites_secrets_masked(tmp_path, capfd):
    rig = Rig(tmp_path, max_restarts=1, sites=[{"prefix": "http://a.example/", "cookies": {"sid": "c00kie-S3CRET"},
                                               "basic_auth": "kiosk:pa55-S3CRET"}])
    rig.start()
    rig.step()
    rig.encoder.say(PageFailed(nav=0, url="http://a.example/", error="401 for kiosk:pa55-S3CRET"))
    rig.step()
    assert rig.status.last_error == "page: 401 for ***"
    rig.encoder.say(Failed(error="net error with cookie sid=c00kie-S3CRET"))
    rig.encoder.exit(exits.CRASHED)
    rig.step()
    assert rig.status.state == "retrying" and "S3CRET" not in rig.status.last_error
    assert "sid=***" in rig.status.last_error
    assert "S3CRET" not in capfd.readouterr().err


def test_an_encoder_of_another_castd_ends_this_castd_with_no_retry(tmp_path):
    rig = Rig(tmp_path, retry_seconds=60)
    rig.start()
    rig.step()
    session = rig.sup.wanted.session
    rig.encoder.exit(exits.VERSION_MISMATCH)
    rig.step(passes=3)
    assert rig.status.state == "idle" and len(rig.encoders) == 1 and rig.sup.exit_code == exits.VERSION_MISMATCH
    assert rig.sup.shutdown_at is not None, "the supervisor ends itself; the front end then exits castd"
    assert rig.sup.director.programme.decide(rig.clock.wall()) is not None, "the new castd resumes it"
    assert not (rig.sup.sessions_dir / session).exists()
    rig.step(seconds=5, passes=3)
    assert rig.sup.finished() and len(rig.encoders) == 1


def test_a_child_that_cannot_boot_fails_the_session_at_once(tmp_path):
    rig = Rig(tmp_path)
    rig.start()
    rig.step()
    rig.encoder.say(Failed(error="no such file: /usr/bin/Xvfb"))
    rig.encoder.exit(exits.CANNOT_BOOT)
    rig.step()
    assert rig.status.state == "retrying" and "cannot boot" in rig.status.last_error
    assert len(rig.encoders) == 1


def test_crashes_while_streaming_restart_at_once_until_the_window_fills(tmp_path):
    rig = Rig(tmp_path)
    rig.start()
    rig.step()
    for i in range(19):
        rig.stream()
        rig.step(seconds=5.0)
        rig.encoder.exit(exits.CRASHED)
        rig.step()
        rig.step(seconds=0.5)
        assert len(rig.encoders) == i + 2, f"crash {i + 1}: restarted after 0.5 s"
    rig.stream()
    rig.encoder.exit(exits.CRASHED)
    rig.step()
    assert rig.status.state == "retrying" and "20 crashes in 300s" in rig.status.last_error


def test_crashes_spread_beyond_the_window_never_give_up(tmp_path):
    rig = Rig(tmp_path)
    rig.start()
    rig.step()
    for _ in range(21):  # more than 20 crashes in all
        rig.stream()
        for _ in range(4):  # 16 s between crashes, reporting: the window holds fewer than 20
            rig.pulse(rig.encoder, frames=int(rig.clock.now * 10), segments=int(rig.clock.now), media_end=1)
            rig.step(seconds=4.0)
        rig.encoder.exit(exits.CRASHED)
        rig.step()
        rig.step(seconds=0.5)
    assert rig.status.state in ("starting", "streaming") and rig.status.restarts == 21


def test_a_stalled_child_is_killed_and_restarted(tmp_path):
    rig = Rig(tmp_path, frame_stall_seconds=3.0)
    rig.streaming()
    child = rig.encoder
    child.frozen = True
    for _ in range(4):
        rig.step(seconds=1.0)
    assert child.killed
    rig.step()
    assert "stalled" in rig.status.last_error
    rig.step(seconds=0.5)
    assert len(rig.encoders) == 2 and rig.status.restarts == 1


def test_duration_ends_the_session(tmp_path):
    rig = Rig(tmp_path)
    rig.streaming(duration=10.0)
    rig.step(seconds=9.0)
    assert rig.status.state == "streaming"
    rig.step(seconds=1.5)
    rig.step()
    assert rig.status.state == "idle" and not rig.alive()


def _shutdown_in(rig: Rig, how: str) -> None:
    if how == "signal":
        rig.sup.signals.append(signal.SIGTERM)
    else:
        rig.send(Shutdown(id="bye"))
    for _ in range(40):
        rig.step(seconds=0.25)
        if rig.sup.finished():
            return
    raise AssertionError("shutdown did not finish within 10 s of loop time")


@pytest.mark.parametrize("state", ["empty", "starting", "streaming", "parked", "ending", "restart_pending",
                                   "hung"])
@pytest.mark.parametrize("how", ["signal", "command"])
def test_shutdown_from_every_state_ends_every_child(tmp_path, state, how):
    rig = Rig(tmp_path, standby="after-use" if state == "parked" else "off", device="tv.example")
    if state != "empty":
        rig.start()
        rig.step()
    if state in ("streaming", "parked", "ending", "hung"):
        rig.stream()
    if state == "parked":
        rig.send(Stop(id="s"))
    if state == "ending":
        rig.encoder.frozen = True
        rig.start(quality="low-latency")
    if state == "restart_pending":
        rig.encoder.exit(exits.CRASHED)
    if state == "hung":
        rig.encoder.frozen = True
    rig.step()
    assert rig.sup.encoder.phase.value == {"hung": "streaming", "empty": "empty"}.get(state, state)
    _shutdown_in(rig, how)
    assert not rig.alive() and all(c.closed for c in rig.encoders)
    assert not [w for w in rig.workers if w.alive]
    assert rig.status.state == "idle"
    for worker in rig.workers:
        assert worker.of(CastStop) or state == "empty"


def test_a_start_during_shutdown_is_refused(tmp_path):
    rig = Rig(tmp_path)
    rig.sup.signals.append(signal.SIGTERM)
    rig.step()
    rig.start()
    rig.step()
    assert rig.acks[-1].ok is False and not rig.encoders


def test_status_is_built_from_the_state_not_kept(tmp_path):
    rig = Rig(tmp_path)
    rig.start(url="http://a.example/x")
    rig.step()
    assert rig.status == msgspec.structs.replace(rig.sup.status(), updated_at=rig.status.updated_at)
    assert rig.status.stream_path == f"/stream/{rig.acks[0].session}/index.m3u8"
    assert rig.status.encoder_pid == rig.encoder.pid


# ---- casting --------------------------------------------------------------------------------------
def _report(session: str, spec: str, state: str, reason: str | None = None) -> DeviceReport:
    return DeviceReport(session=session, device=CastDevice(device=spec, state=state, reason=reason),
                        app_session="app-1")


def test_the_viewer_taking_every_tv_back_ends_the_session(tmp_path):
    rig = Rig(tmp_path)
    rig.start(devices=["tv1", "tv2"])
    rig.step()
    session = rig.acks[0].session
    worker = rig.workers[-1]
    assert worker.of(CastWant)[-1].devices[0].spec == "tv1"
    rig.stream()
    assert worker.of(CastWant)[-1].stream_path == f"/stream/{session}/index.m3u8"
    worker.say(_report(session, "tv1", "user_stopped", "stopped on the TV"), _report(session, "tv2", "playing"))
    rig.step()
    assert rig.status.state == "streaming", "one TV still plays castd's stream"
    worker.say(_report(session, "tv2", "other_app", "YouTube took over"))
    rig.step(passes=2)  # the verdict ends the encoder; the next pass reaps it
    assert rig.status.state == "idle" and not rig.alive()
    stop = worker.of(CastStop)[-1]
    assert stop.session == session and {t.spec for t in stop.devices} == {"tv1", "tv2"}


def test_what_casting_knows_of_ended_sessions_does_not_grow_with_sessions(tmp_path):
    rig = Rig(tmp_path)
    for i in range(50):
        rig.start(url=f"http://a.example/{i}", devices=["tv1"], quality=("720p", "low-latency")[i % 2])
        rig.step()
        session = rig.sup.wanted.session
        worker = rig.workers[-1]
        worker.say(_report(session, "tv1", "playing"))
        rig.step()
        rig.send(Stop(id=f"s{i}"))
        rig.step()
        worker.say(_report(session, "tv1", "stopped"))
        rig.step(seconds=0.5)
        worker.say(_report(session, "tv1", "stopped"))  # late: after the stop was confirmed and forgotten
        rig.step(seconds=0.5)
    assert len(rig.sup.casting.app_sessions) <= 2 and not rig.sup.casting.stopping


def container_sizes(rig) -> dict[str, int]:
    """The length of every list, dict, set and tuple the supervisor and its parts hold."""
    sup = rig.sup
    owners = {"sup": sup, "casting": sup.casting, "slot": sup.encoder, "encoder.run": sup.encoder.run,
              "encoder.policy": sup.encoder.policy, "worker.run": sup.casting.worker,
              "worker.policy": sup.casting.worker.policy, "director": sup.director, "memory": sup.memory,
              "programme": sup.director.programme}
    sizes = {}
    for owner, obj in owners.items():
        fields = vars(obj) if hasattr(obj, "__dict__") else msgspec.structs.asdict(obj)
        for name, value in fields.items():
            if isinstance(value, (list, dict, set, tuple)):
                sizes[f"{owner}.{name}"] = len(value)
    return sizes


def test_nothing_the_supervisor_holds_grows_with_the_sessions_it_ran(tmp_path):
    """A month in a second: sessions with a device, page switches, an encoder crash each, stops, late reports.
    Every container the supervisor, its slot, casting and the programme hold is as long after 300 sessions
    as after 60."""
    from castd.logs import log

    rig = Rig(tmp_path, standby="after-use")
    log.disable("castd")
    try:
        sizes = []
        for i in range(300):
            rig.start(url=f"http://a.example/{i}", devices=["tv1"], quality=("720p", "low-latency")[i % 3 == 0])
            rig.step()
            session = rig.sup.wanted.session
            rig.stream()
            rig.workers[-1].say(_report(session, "tv1", "playing"))
            rig.start(url=f"http://a.example/{i}/b", devices=["tv1"], quality=rig.sup.wanted.quality)
            rig.run(1)
            rig.encoder.exit(exits.CRASHED)
            rig.step(passes=2)
            rig.run(1)
            rig.send(Stop(id=f"s{i}"))
            rig.step()
            rig.workers[-1].say(_report(session, "tv1", "stopped"))
            rig.step(seconds=0.5)
            rig.workers[-1].say(_report(session, "tv1", "stopped"))  # late
            rig.step(seconds=0.5)
            if i in (59, 299):
                sizes.append(container_sizes(rig))
    finally:
        log.enable("castd")
    grown = {name: (sizes[0].get(name, 0), size) for name, size in sizes[1].items() if size > sizes[0].get(name, 0)}
    assert not grown, f"grew with the sessions (after 60, after 300): {grown}"
    assert rig.status.state == "idle" and len(rig.alive()) == 1 and rig.status.standby == "warm"


def test_a_failed_device_alone_is_no_viewer_verdict(tmp_path):
    rig = Rig(tmp_path)
    rig.start(devices=["tv1"])
    rig.step()
    session = rig.acks[0].session
    rig.workers[-1].say(DeviceReport(session=session, device=CastDevice(device="tv1", state="failed",
                                                                      retry_in=None)))
    rig.step()
    assert rig.status.state == "starting" and rig.status.cast.devices[0].state == "failed"


def test_a_dying_cast_worker_is_restarted_with_the_whole_state_then_given_up_until_later(tmp_path):
    rig = Rig(tmp_path)
    rig.streaming(devices=["tv1"])
    delays = []
    for _ in range(9):
        rig.workers[-1].exit(-signal.SIGSEGV)
        rig.step()
        before, waited = len(rig.workers), 0.0
        while len(rig.workers) == before and waited < 60:
            rig.pulse(rig.encoder, frames=int(rig.clock.now * 10), segments=int(rig.clock.now))
            rig.step(seconds=0.5)
            waited += 0.5
        delays.append(waited)
        assert rig.workers[-1].of(CastWant)[-1].stream_path, "the new worker is told to LOAD at once"
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0] and max(delays) == 30.0
    assert rig.status.cast.worker_restarts == 9
    rig.workers[-1].exit(-signal.SIGSEGV)
    for _ in range(70):
        rig.pulse(rig.encoder, frames=int(rig.clock.now * 10), segments=int(rig.clock.now))
        rig.step(seconds=0.5)
    assert len(rig.workers) == 10, "ten crashes within 300 s: no more quick restarts"
    assert rig.status.cast.devices[0].state == "failed" and rig.status.cast.devices[0].retry_in == 60
    assert rig.status.state == "streaming", "the stream itself goes on"
    rig.run(30)
    assert len(rig.workers) == 11, "given up for now, not for good: tried again after retry_seconds"
    assert rig.workers[-1].of(CastWant)[-1].stream_path, "with the whole state"


def test_an_idle_cast_worker_ends_and_a_new_session_starts_another(tmp_path):
    rig = Rig(tmp_path)
    rig.start(devices=["tv1"])
    rig.step()
    session = rig.acks[0].session
    worker = rig.workers[-1]
    rig.send(Stop(id="s"))
    rig.step()
    worker.say(_report(session, "tv1", "stopped"))
    rig.step()
    assert rig.status.cast.stopping == 0
    rig.step(seconds=61.0)
    rig.step()
    assert not worker.alive and worker.closed and rig.status.cast.worker_pid is None
    rig.start(devices=["tv1"])
    rig.step()
    assert len(rig.workers) == 2 and rig.workers[-1].of(CastWant)


# ---- the building blocks --------------------------------------------------------------------------
def test_restart_policy_paces_forgives_and_gives_up():
    policy = RestartPolicy(first=0.5, cap=4.0, healthy_after=60.0, max_failures=5)
    decisions = [policy.exited(t, exits.CRASHED, None) for t in range(5)]
    assert [d.delay for d in decisions[:4]] == [0.5, 1.0, 2.0, 4.0]
    assert decisions[4].verdict is Verdict.GIVE_UP and "5 failed starts" in decisions[4].why
    policy.reset()
    policy.exited(0, exits.CRASHED, None)
    policy.working(60.0)
    assert policy.exited(100, exits.CRASHED, None).delay == 0.5, "a healthy minute forgives"
    assert policy.exited(101, exits.CRASHED, 5.0).delay == 0.5, "a working child restarts at once"
    assert policy.exited(102, exits.CANNOT_BOOT, None).verdict is Verdict.GIVE_UP
    encoder_like = RestartPolicy(first=0.5, after_work=0.0)  # the encoder's: its crash bridge must be quick
    assert encoder_like.exited(0, exits.CRASHED, 5.0).delay == 0.0
    assert encoder_like.exited(1, exits.CRASHED, None).delay == 0.5, "a start that failed is still paced"


def test_liveness_pings_one_at_a_time_and_calls_a_silent_child_wedged():
    live = Liveness(every=2.0, deadline=10.0)
    live.started(0.0)
    assert live.ping(1.0) is None, "a new child is asked after `every`"
    first = live.ping(2.0)
    assert first == "ping-1" and live.ping(4.0) is None, "one ping outstanding at most"
    assert not live.answered(3.0, "ping-0") and live.answered(3.0, first)
    second = live.ping(4.0)
    assert second == "ping-2" and not live.wedged(14.0) and live.wedged(14.1)
    assert live.answering(14.1, within=12.0) and not live.answering(15.1, within=12.0), "the watchdog stops"
    live.started(20.0)  # its successor
    assert not live.answered(20.5, second), "a late answer of the old child counts for nothing"
    assert live.answering(20.5, within=12.0) and live.ping(22.0) == "ping-3"


def test_the_media_sessions_castd_ended_are_remembered_boundedly():
    ended = RecentIds(keep=64)
    for msid in range(10_000):  # a month of LOADs
        ended.add(msid)
    ended.update([3, 9_999])
    assert len(ended) == 64 and 9_999 in ended and 9_937 in ended and 9_936 not in ended
    assert 3 in ended, "seen again: the newest once more"


def test_exit_codes_say_why():
    assert exits.describe(-signal.SIGKILL) == "killed by SIGKILL (perhaps out of memory?)"
    assert exits.describe(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert exits.describe(exits.CANNOT_BOOT) == "exited with code 3 (cannot boot)"
    assert exits.describe(exits.CRASHED) == "exited with code 1 (crashed)"
    assert exits.classify(7) is exits.Exit.UNKNOWN


def test_a_playlist_request_waits_for_the_next_segment_only_when_the_newest_is_old():
    edge = FreshEdge(0.5)
    assert edge.hold(0.0) == 0 and edge.hold(0.2) == 0  # fresh enough: served at once
    assert edge.hold(0.3) == pytest.approx(0.2 + SLACK)  # the rest of the segment, and a listing a little late
    assert edge.hold(0.6) == pytest.approx(SLACK - 0.1)
    assert edge.hold(0.5 + SLACK) == 0 and edge.hold(30.0) == 0  # the playlist stopped moving (a restart)
    assert edge.hold(-3.0) == 0  # the wall clock went back
    assert FreshEdge(1.0).hold(0.3) == 0 and FreshEdge(1.0).hold(0.5) == pytest.approx(0.5 + SLACK)  # hls-1s
    # over loads spread evenly across a segment: the age a player starts from, and what the first read waits
    ages = [0.5 * i / 1000 for i in range(1000)]
    started = [0.0 if edge.hold(age) else age for age in ages]
    waited = [edge.hold(age) - SLACK if edge.hold(age) else 0.0 for age in ages]
    assert sum(ages) / 1000 == pytest.approx(0.25, abs=0.01)
    assert sum(started) / 1000 == pytest.approx((FRESH_SHARE * 0.5) ** 2 / 1.0, abs=0.01)  # 0.04 s
    assert sum(waited) / 1000 == pytest.approx((0.5 - FRESH_SHARE * 0.5) ** 2 / 1.0, abs=0.01)  # 0.09 s


def test_a_held_first_picture_puts_the_start_point_of_4_15_and_later_on_a_segment_start():
    """Shaka 4.15+ start at the listed edge + EXT-X-START's offset (presets.py). With hls-fast-big's held
    segments, that point is a segment start whether the player reads the playlist when the hold is listed or
    a segment later; each held EXTINF rounds to at most EXT-X-TARGETDURATION 1; x264's interval spans the
    longest."""
    def before_start(shape, listed):  # segments 5.2 and 4.9.2 fetch before the one at the start point
        lengths = list(shape.held_segments) + [shape.segment_seconds] * 4
        ends = [sum(lengths[:i + 1]) for i in range(len(lengths))]
        start = listed + shape.start_offset
        assert any(abs(start - end) < 1e-9 for end in ends), (shape.name, listed, start)  # a segment start
        return sum(1 for end in ends if start - 2.0 < end <= start + 1e-9)

    big, even = STREAM_FORMATS["hls-fast-big"], STREAM_FORMATS["hls-fast"]
    assert big.held_segments == (1.4, 0.5, 0.5, 0.5) and all(round(x) <= 1 for x in big.held_segments)
    assert even.held_segments == (0.5,) * 6
    for listed in (0.0, 0.5):  # read when the hold is listed, or a segment later
        assert before_start(big, big.first_hold + listed) == 1 + round(listed / 0.5)
        assert before_start(even, even.first_hold + listed) == 3 + round(listed / 0.5)
    assert segment_starts(big.held_segments, 10) == [0, 14, 19, 24]
    assert get_preset("720p", "hls-fast-big").keyint == 14 and get_preset("720p", "hls-fast").keyint == 5
    with pytest.raises(ValueError, match="do not add up"):
        StreamFormat("x", 0.5, None, None, first_hold=3.0, first_segments=(1.4, 0.5))


def test_token_bucket_allows_a_burst_then_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(burst=3, per_minute=6.0, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(10.0)
    clock.advance(5.0)
    assert bucket.take() == pytest.approx(5.0)
    clock.advance(5.0)
    assert bucket.take() == 0.0
    clock.advance(3600.0)
    assert [bucket.take() for _ in range(4)][:3] == [0.0, 0.0, 0.0], "never more than the burst"


def memory_rig(tmp_path, pss: dict[str, float]) -> Rig:
    """A streaming session (limit 650 MB, checked every 10 s) whose child uses `pss["mb"]` MB (PSS)."""
    rig = Rig(tmp_path, memory_limit_mb=650, memory_check_seconds=10.0)
    rig.sup.memory_probe = lambda pid: pss["mb"]
    rig.streaming()
    return rig


def test_memory_over_the_limit_reloads_then_restarts_and_the_session_goes_on(tmp_path):
    pss = {"mb": 400.0}
    rig = memory_rig(tmp_path, pss)
    session, first = rig.status.session, rig.encoder

    def run(seconds: float) -> None:
        for _ in range(int(seconds)):
            rig.pulse(rig.encoder, frames=int(rig.clock.now * 10), segments=int(rig.clock.now), media_end=20.0)
            rig.step(seconds=1.0)

    run(12)
    assert rig.status.memory_reloads == 0
    pss["mb"] = 900.0
    run(10)
    assert rig.status.memory_reloads == 1 and first.of(Navigate)[-1].url == rig.sup.wanted.url
    run(35)  # three more samples over the limit: the reload did not help
    assert rig.status.memory_restarts == 1 and first.of(Quit) and not first.alive
    run(2)
    assert len(rig.encoders) == 2 and rig.status.session == session and rig.status.state == "streaming"
    assert rig.encoder.params.timeline == Timeline(start=20.0, discontinuity=True)
    assert rig.status.restarts == 0, "a planned restart is no failure"


def test_memory_back_under_the_limit_after_a_reload_needs_no_restart(tmp_path):
    pss = {"mb": 900.0}
    rig = memory_rig(tmp_path, pss)
    for i in range(60):
        if i == 15:
            pss["mb"] = 500.0
        rig.pulse(rig.encoder, frames=i * 10, segments=i, media_end=float(i))
        rig.step(seconds=1.0)
    assert rig.status.memory_reloads == 1 and rig.status.memory_restarts == 0 and len(rig.encoders) == 1


def test_a_booting_child_gets_the_page_load_timeout_before_its_first_report(tmp_path):
    rig = Rig(tmp_path, frame_stall_seconds=3.0, page_load_timeout=20.0)
    rig.start()
    rig.step()
    child = rig.encoder
    for _ in range(22):  # a loaded machine: no report for 22 s, not yet a stall
        rig.step(seconds=1.0)
    assert child.alive
    rig.step(seconds=2.0)
    assert child.killed, "silent past frame_stall + page_load_timeout"


# ---- a cast link's reading of the device's messages -------------------------------------------------
def _link(state: str = "playing"):
    from castd.cast.link import Link, Plan

    reports = []
    link = Link("tv", Plan(session="s", mode="hls", title="t", stream_path="/stream/s/index.m3u8"), Config(),
                resolver=None, report=lambda lk: reports.append(lk.snapshot()))  # type: ignore[arg-type]
    link.state, link.media_session, link.loaded = state, 7, "http://castd/stream/s/index.m3u8"
    return link, reports


@pytest.mark.parametrize("reason", ["CANCELLED", "INTERRUPTED"])
def test_link_reads_a_stop_on_the_tv_as_the_viewers_choice(reason):
    link, reports = _link()
    link._on_media({"mediaSessionId": 7, "playerState": "IDLE", "idleReason": reason})
    assert link.terminal and link.state == "user_stopped" and reason in (link.reason or "")
    assert reports[-1].state == "user_stopped"


@pytest.mark.parametrize("reason", ["ERROR", "FINISHED", None])
def test_link_reads_a_receiver_error_as_a_fault_to_retry(reason):
    from castd.cast.connection import CastError

    link, _ = _link()
    with pytest.raises(CastError, match="stopped playing"):
        link._on_media({"mediaSessionId": 7, "playerState": "IDLE", "idleReason": reason})
    assert not link.terminal and link.media_session is None and 7 in link.ended_by_us


def test_link_ignores_what_castd_itself_ended_and_a_quiet_idle_while_loading():
    link, reports = _link(state="loading")
    link._on_media({"mediaSessionId": 7, "playerState": "IDLE"})  # some receivers pass through IDLE
    assert link.state == "loading" and not reports
    link.ended_by_us.add(3)
    link._on_media({"mediaSessionId": 3, "playerState": "PLAYING", "media": {"contentId": "other"}})
    assert not link.terminal


def test_link_reads_pause_play_and_another_senders_media():
    link, _ = _link()
    link._on_media({"mediaSessionId": 7, "playerState": "PAUSED"})
    assert link.state == "paused"
    link._on_media({"mediaSessionId": 7, "playerState": "PLAYING"})
    assert link.state == "playing"
    link._on_media({"mediaSessionId": 9, "playerState": "PLAYING", "media": {"contentId": "http://youtube/x"}})
    assert link.terminal and link.state == "user_stopped" and "another sender" in (link.reason or "")


def test_link_reads_castds_app_closed_or_replaced():
    """The link's sharer (castd/cast/takeover.py, tested in test_takeover.py) reads the receiver status."""
    from castd.cast.takeover import Act, facts_of

    link, _ = _link()
    link.app_session = "ours"
    castd_app = {"applications": [{"appId": "CC1AD845", "sessionId": "ours"}]}
    assert link.sharer.decide(0.0, facts_of(castd_app, link.app_session)).act is Act.CAST
    closed = link.sharer.decide(1.0, facts_of({"applications": []}, link.app_session))
    assert (closed.act, closed.state) == (Act.STEP_ASIDE, "user_stopped")
    link, _ = _link()
    link.app_session = "ours"
    link.sharer.decide(0.0, facts_of(castd_app, link.app_session))
    youtube = {"applications": [{"appId": "233637DE", "displayName": "YouTube", "sessionId": "yt"}]}
    replaced = link.sharer.decide(1.0, facts_of(youtube, link.app_session))
    assert replaced.state == "other_app" and "YouTube" in (replaced.reason or "")


def test_link_takes_its_tvs_keys_under_the_sessions_own():
    from castd.cast.link import Link, Plan
    from castd.config import Tv
    from castd.sharing import Sharing

    config = Config(sticky=True, tvs=[Tv(device="Living Room TV", takeover="when-idle", volume=30)])
    plan = Plan(session="s", mode="hls", title="t")
    link = Link("living room tv", plan, config, resolver=None, report=lambda lk: None)  # type: ignore[arg-type]
    assert (link.sharer.policy.takeover, link.sharer.policy.sticky, link.sharing.volume) == ("when-idle", True, 30)
    other = Link("Kitchen", plan, config, resolver=None, report=lambda lk: None)  # type: ignore[arg-type]
    assert other.sharer.policy.takeover == "always" and other.sharing.volume is None
    told = Link("living room tv", Plan(session="s", mode="hls", title="t", sharing=Sharing(takeover="always")),
                config, resolver=None, report=lambda lk: None)  # type: ignore[arg-type]
    assert told.sharer.policy.takeover == "always" and told.sharing.volume == 30  # the start wins where it says


def test_a_start_answers_waiting_for_a_tv_castd_knows_is_busy_under_when_idle_only(tmp_path):
    """The Ack of a start names the TVs a link already waits on (another app there) when the start's keys say
    when-idle; `always` takes the TV, a TV castd has no news of is not guessed at, and news clears it."""
    from castd.sharing import Sharing

    rig = Rig(tmp_path)
    rig.streaming(devices=["tv1", "tv2"], sharing=Sharing(takeover="when-idle"))
    assert rig.acks[-1].waiting == [], "nothing known yet"
    session = rig.acks[-1].session
    rig.workers[-1].say(DeviceReport(session=session, device=CastDevice(
        device="tv1", state="waiting", app="Netflix", name="Living Room TV", reason="Netflix is on the device")))
    rig.step()
    rig.start(url="http://b.example/", devices=["Living Room TV", "tv2"], sharing=Sharing(takeover="when-idle"))
    rig.step()
    waits = rig.acks[-1].waiting
    assert [(w.device, w.state, w.app) for w in waits] == [("Living Room TV", "waiting", "Netflix")], waits
    rig.start(url="http://c.example/", devices=["tv1"], sharing=Sharing(takeover="always"))
    rig.step()
    assert rig.acks[-1].ok and rig.acks[-1].waiting == [], "always: castd takes the TV, no wait"
    rig.workers[-1].say(DeviceReport(session=rig.acks[-1].session, device=CastDevice(device="tv1", state="loading")))
    rig.step()
    rig.start(url="http://d.example/", devices=["tv1"], sharing=Sharing(takeover="when-idle"))
    rig.step()
    assert rig.acks[-1].waiting == [], "the TV's news since (castd casts there): no longer known busy"
