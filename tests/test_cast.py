"""Casting, end to end: the real daemon over HTTP, real Chromium + PyAV, and the real pychromecast (in castd's
cast worker) talking TLS to fake Cast devices (tests/fakecast) that fetch and decode what they are told to
LOAD. Everything stays on 127.0.0.1 (mDNS included).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from helpers import Daemon, free_port, process_identity, wait_for

from fakecast import (APP_BACKDROP, APP_DASHCAST, APP_MEDIA_RECEIVER, APP_NETFLIX, APP_YOUTUBE, NS_MEDIA, NS_RECEIVER,
                      FakeCastDevice)

CAST_ENV = {
    "CASTD_MDNS_INTERFACES": "127.0.0.1",  # mDNS never leaves loopback
    "CASTD_MDNS_TIMEOUT": "2",
    "CASTD_CAST_HEARTBEAT_TIMEOUT": "1.5",  # pychromecast's 20 s, shortened so the heartbeat test is quick
    "CASTD_CAST_CONNECT_TIMEOUT": "3",
    "CASTD_CAST_LOAD_TIMEOUT": "10",
    "CASTD_STANDBY": "after-use",  # a warm encoder: each start after the first costs ~0.6 s, not ~2 s
    "CASTD_CAST_STALL_SECONDS": "2",  # the playback watch's window, short for the freeze test (default 5)
}


@pytest.fixture(scope="module")
def castd(tmp_path_factory):
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("cast") / "run", env_extra=CAST_ENV).start()
    yield d
    d.finish()


def idle(d: Daemon) -> None:
    d.post("/stop")
    wait_for(lambda: (s := d.status())["state"] == "idle" and s["cast"]["stopping"] == 0, 30,
             message="idle, with every device stopped")


@pytest.fixture
def cd(castd):
    """The module's castd, idle (and done stopping its devices) before and after the test."""
    idle(castd)
    yield castd
    idle(castd)


def unique_name() -> str:
    return f"castd test TV {os.getpid()}-{uuid.uuid4().hex[:8]}"  # mDNS on loopback is shared by all runs


@pytest.fixture
def tv():
    """A fake device. Tests name it before `cd`, so castd's end-of-test stop reaches it while it listens."""
    with FakeCastDevice(name=unique_name()) as device:
        yield device


def spec(tv: FakeCastDevice) -> str:
    return f"127.0.0.1:{tv.port}"


def start(d: Daemon, url: str, **body) -> dict:
    response = d.post("/start", json={"url": url, **body})
    assert response.status_code == 200, response.text
    return response.json()


def device(d: Daemon, name: str) -> dict:
    found = [dev for dev in d.status()["cast"]["devices"] if dev["device"] == name]
    return found[0] if found else {}


def wait_device(d: Daemon, name: str, state: str, timeout: float = 20) -> dict:
    return wait_for(lambda: (dev := device(d, name)).get("state") == state and dev, timeout,
                    message=f"{name} {state} (now {device(d, name)})")


def sent_types(tv: FakeCastDevice, namespace: str) -> list[str]:
    return [p.get("type") for ns, p in tv.messages if ns == namespace]


def cast_and_play(d: Daemon, tv: FakeCastDevice, url: str, **body) -> dict:
    started = start(d, url, device=spec(tv), **body)
    tv.wait_for(lambda: tv.player_state == "PLAYING", timeout=30, what="the fake plays castd's stream")
    wait_device(d, spec(tv), "playing")
    return started


# ---- start, switch, stop ------------------------------------------------------------------------
def test_start_loads_the_live_stream_switch_sends_nothing_stop_quits(tv, cd, pages):
    assert cd.status()["cast"]["note"] == "no device set"  # no default device in this castd's config
    started = cast_and_play(cd, tv, pages.url("/color/ff0000"))
    assert started["devices"] == [spec(tv)] and started["mode"] == "hls"

    (load,) = tv.loads
    media = load["media"]
    status = cd.status()
    dev = device(cd, spec(tv))
    assert media["contentId"] == dev["stream_url"] == status["stream_url"]  # 127.0.0.1: the fake is on loopback
    assert media["contentType"] == "application/vnd.apple.mpegurl" and media["streamType"] == "LIVE"
    # TS is what a receiver assumes; declaring it made Shaka end at 0 ms (jellyfin-chromecast PR 953)
    assert "hlsSegmentFormat" not in media and "hlsVideoSegmentFormat" not in media
    assert media["metadata"]["title"] == "castd: 127.0.0.1"
    assert load["autoplay"] is True and load["sessionId"] == tv.session_id
    assert tv.current_app == APP_MEDIA_RECEIVER
    # the fake fetched master playlist, media playlist and newest segment, and decoded it: a real first segment
    (check,) = tv.load_results
    assert check.ok and check.master and check.live and check.segment_format == "ts", check.error
    assert (check.video_codec, check.profile, check.has_audio) == ("h264", "High", True)
    assert status["state"] == "streaming" and status["cast"]["note"] is None
    assert (dev["name"], dev["host"], dev["port"]) == (spec(tv), "127.0.0.1", tv.port)
    assert tv.dropped == []  # nothing castd sent was refused for want of a virtual connection

    # a page switch: same session, same stream; the TV is told nothing
    before = len(tv.messages)
    switched = start(cd, pages.url("/color/0000ff"), device=spec(tv))
    assert switched["switched"] and switched["session"] == started["session"]
    wait_for(lambda: cd.status()["url"].endswith("/color/0000ff") and cd.status()["state"] == "streaming", 20,
             message="page switched")
    time.sleep(1.0)
    castd_sent = [p.get("type") for ns, p in tv.messages[before:] if ns in (NS_MEDIA, NS_RECEIVER)]
    reads = [t for t in castd_sent if t == "GET_STATUS"]  # the playback watch asks every second (freeze.py)
    assert castd_sent == reads and len(reads) <= 4 and len(tv.loads) == 1

    cd.post("/stop")
    tv.wait_for(lambda: tv.current_app is None, timeout=10, what="castd's app quit")
    wait_for(lambda: f"device={spec(tv)} note=\"castd's app was quit\"" in cd.log(), 10, message="stop confirmed")
    stops = [p for ns, p in tv.messages if p.get("type") == "STOP"]
    assert [s.get("mediaSessionId") for s in stops[:1]] == [1]  # the media first...
    assert stops[-1].get("sessionId") is not None  # ...then castd's app, named by its session
    assert not tv.dropped


def test_a_new_session_takes_the_device_over_without_quitting(tv, cd, pages):
    first = cast_and_play(cd, tv, pages.url("/color/ff0000"))
    receiver_before = len(sent_types(tv, NS_RECEIVER))
    second = start(cd, pages.url("/color/00ff00"), device=spec(tv), quality="low-latency")  # a new session
    assert not second["switched"] and second["session"] != first["session"]
    tv.wait_for(lambda: len(tv.loads) == 2 and tv.player_state == "PLAYING", timeout=30, what="the new LOAD")
    assert tv.loads[1]["media"]["contentId"] == second["stream_url"] != first["stream_url"]
    assert "STOP" not in sent_types(tv, NS_RECEIVER)[receiver_before:]  # castd's app stayed up in between
    dev = wait_device(cd, spec(tv), "playing")
    assert dev["stream_url"] == second["stream_url"] and dev["failures"] == 0  # the old stream's end is no fault
    assert cd.status()["cast"]["stopping"] == 0


def test_without_a_device_castd_still_streams(cd, pages):
    started = start(cd, pages.url("/color/00ff00"))
    assert started["devices"] == []
    status = cd.wait_state("streaming", timeout=30)
    assert status["cast"] == {**status["cast"], "devices": [], "note": "no device set"}


# ---- keeping it there ---------------------------------------------------------------------------
def test_dropped_connection_reconnects_and_reloads_only_when_needed(tv, cd, pages):
    cast_and_play(cd, tv, pages.url("/color/ff0000"))
    # 1) the connection drops but the TV keeps playing: castd reconnects and leaves the playback alone
    assert tv.drop_connections() == 1
    tv.wait_for(lambda: tv.total_connections >= 2 and tv.connections == 1, timeout=15, what="castd reconnects")
    wait_device(cd, spec(tv), "playing")
    time.sleep(0.5)
    assert len(tv.loads) == 1 and tv.player_state == "PLAYING"

    # 2) the TV lost the stream while castd could not reach it: castd reconnects and LOADs again
    assert tv.refuse_connections(True) == 1  # switched off: castd's connection dies with it
    assert tv.stop_from_remote("ERROR")  # nobody connected: no sender hears of it
    wait_for(lambda: device(cd, spec(tv))["state"] in ("connecting", "failed"), 10, message="castd notices")
    time.sleep(1.0)  # a few refused reconnects
    tv.refuse_connections(False)
    tv.wait_for(lambda: len(tv.loads) == 2 and tv.player_state == "PLAYING", timeout=45, what="re-LOAD")
    assert tv.loads[1]["media"]["contentId"] == tv.loads[0]["media"]["contentId"]
    assert tv.load_results[-1].ok
    assert cd.status()["state"] == "streaming"


def test_receiver_error_is_reloaded(tv, cd, pages):
    cast_and_play(cd, tv, pages.url("/color/ff0000"))
    assert tv.stop_from_remote("ERROR")  # the receiver's player failed (IDLE/ERROR)
    tv.wait_for(lambda: len(tv.loads) == 2 and tv.player_state == "PLAYING", timeout=20, what="re-LOAD")
    dev = wait_device(cd, spec(tv), "playing")
    assert dev["failures"] == 1 and "stopped playing the stream (ERROR)" in dev["last_error"]


@pytest.mark.parametrize("how, verdict", [("segments", "stuck buffering"), ("clock", "playback stopped advancing")])
def test_a_frozen_receiver_is_loaded_again_and_a_pause_is_left_alone(tv, cd, pages, how, verdict):
    """The fast engine's freezes: BUFFERING for good, or PLAYING with a still currentTime. The receiver-grade
    version (the real Shaka Player frozen on purpose) is in test_glass_cast.py."""
    cast_and_play(cd, tv, pages.url("/color/ff0000"))
    assert tv.viewer_pause(True)  # a pause on the remote is not a freeze
    wait_device(cd, spec(tv), "paused")
    time.sleep(5)  # 2.5 stall windows
    assert len(tv.loads) == 1 and device(cd, spec(tv))["reloads"] == 0
    assert tv.viewer_pause(False)
    wait_device(cd, spec(tv), "playing")
    time.sleep(1.5)
    assert len(tv.loads) == 1
    tv.freeze_player(how)
    tv.wait_for(lambda: len(tv.loads) == 2 and tv.player_state == "PLAYING", timeout=15, what="castd's new LOAD")
    dev = wait_for(lambda: (d := device(cd, spec(tv)))["reloads"] == 1 and d, 10, message="the reload in /status")
    assert dev["reload_reason"].startswith(verdict), dev["reload_reason"]
    assert dev["failures"] == 0 and dev["media_time"] is not None and dev["media_time_at"] is not None
    asked = [p for ns, p in tv.messages if ns == NS_MEDIA and p.get("type") == "GET_STATUS"]
    assert asked, "castd reads the media status to see a freeze"


def test_heartbeat_timeout_reconnects(tv, cd, pages):
    cast_and_play(cd, tv, pages.url("/color/ff0000"))
    tv.stop_heartbeat(True)  # the TLS socket stays open; the device stops answering PINGs
    tv.wait_for(lambda: tv.total_connections >= 2, timeout=15, what="castd gives up on the silent connection")
    tv.stop_heartbeat(False)
    wait_device(cd, spec(tv), "playing")
    assert len(tv.loads) == 1 and tv.player_state == "PLAYING"  # the TV played on: nothing to reload
    assert "cast device reconnected" in cd.log()


def test_failed_load_is_retried_and_shown(tv, cd, pages):
    tv.fail_next_load(True)
    cast_and_play(cd, tv, pages.url("/color/ff0000"))
    assert len(tv.loads) == 2 and not tv.load_results[0].ok and tv.load_results[1].ok
    dev = device(cd, spec(tv))
    assert dev["failures"] == 1 and "LOAD_FAILED (error 104)" in dev["last_error"]


# ---- respecting the person ----------------------------------------------------------------------
@pytest.mark.parametrize("reason", ["CANCELLED", "INTERRUPTED"])
def test_stop_on_the_tv_ends_the_session_and_castd_does_not_recast(tv, cd, pages, reason):
    started = cast_and_play(cd, tv, pages.url("/color/ff0000"))
    assert tv.stop_from_remote(reason)
    cd.wait_state("idle", timeout=10)  # typically 0.1 s: bench/cast_latency.py measures it
    tv.wait_for(lambda: tv.current_app is None, timeout=5, what="castd quits its idle app")
    time.sleep(1.5)
    assert len(tv.loads) == 1 and sent_types(tv, NS_RECEIVER).count("LAUNCH") == 1
    log = cd.log()
    assert "session ended by the viewer" in log and started["session"] in log


def test_another_app_ends_the_session_and_is_left_alone(tv, cd, pages):
    cast_and_play(cd, tv, pages.url("/color/ff0000"))
    tv.switch_app()  # YouTube takes over
    cd.wait_state("idle", timeout=10)
    time.sleep(1.5)
    assert tv.current_app == APP_YOUTUBE  # castd did not quit someone else's app
    assert len(tv.loads) == 1
    assert sent_types(tv, NS_RECEIVER).count("STOP") == 0
    assert "YouTube took over the device" in cd.log()


# ---- several devices ----------------------------------------------------------------------------
def test_two_devices_share_the_stream_and_fail_alone(cd, pages):
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    with FakeCastDevice(name=unique_name()) as a, FakeCastDevice(name=unique_name()) as b:
        started = start(cd, pages.url("/color/ff0000"), device=[spec(a), spec(b), closed])
        for tv in (a, b):
            tv.wait_for(lambda tv=tv: tv.player_state == "PLAYING", timeout=30, what="both play")
        assert a.loads[0]["media"]["contentId"] == b.loads[0]["media"]["contentId"]
        assert started["stream_url"] == a.loads[0]["media"]["contentId"]
        bad = wait_device(cd, closed, "failed")
        assert "Connection refused" in bad["reason"] and bad["retry_in"] is not None
        assert cd.status()["state"] == "streaming"

        assert b.stop_from_remote("CANCELLED")  # one viewer stops their TV: the session goes on
        wait_device(cd, spec(b), "user_stopped")
        time.sleep(1.0)
        status = cd.status()
        assert status["state"] == "streaming" and device(cd, spec(a))["state"] == "playing"
        assert len(b.loads) == 1 and len(a.loads) == 1
        idle(cd)  # waits for the stops to be confirmed, while both fakes still listen
        assert a.current_app is None and b.current_app is None  # b still showed castd's (idle) app: quit too


# ---- discovery ------------------------------------------------------------------------------------
def test_mdns_discovery_and_casting_by_name(tv, cd, pages):
    tv.advertise()
    found = wait_for(lambda: [d for d in cd.get("/devices", params={"timeout": 1.5}).json()["devices"]
                              if d["uuid"] == str(tv.uuid)], 20, interval=1, message="mDNS finds the fake")
    (info,) = found
    assert (info["name"], info["model"], info["host"], info["port"]) == (tv.name, tv.model, "127.0.0.1", tv.port)
    assert info["activity"] == "idle" and info["device"] == tv.name and info["source"] == "mdns"

    start(cd, pages.url("/color/ff0000"), device=tv.name)  # by friendly name, resolved by mDNS
    tv.wait_for(lambda: tv.player_state == "PLAYING", timeout=30)
    dev = wait_device(cd, tv.name, "playing")
    assert (dev["uuid"], dev["port"], dev["name"]) == (str(tv.uuid), tv.port, tv.name)
    # a longer listen than the cached answer's: a fresh discovery, not the cache
    (info,) = [d for d in cd.get("/devices", params={"timeout": 1.6}).json()["devices"] if d["uuid"] == str(tv.uuid)]
    assert info["activity"] == "castd" and info["app_id"] == APP_MEDIA_RECEIVER

    # the command line asks the running castd (GET /devices)
    out = subprocess.run([sys.executable, "-m", "castd", "devices", "--port", str(cd.port), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    listed = [d for d in json.loads(out.stdout) if d["uuid"] == str(tv.uuid)]
    assert listed and listed[0]["activity"] == "castd" and listed[0]["name"] == tv.name


# ---- direct mode ------------------------------------------------------------------------------------
def test_direct_mode_sends_the_page_to_dashcast(tv, cd, pages):
    first, second = pages.url("/color/ff0000"), pages.url("/color/00ff00")
    started = start(cd, first, device=spec(tv), mode="direct")
    assert started["mode"] == "direct" and started["stream_url"] is None
    tv.wait_for(lambda: tv.dashcast_loads, timeout=15, what="the DashCast load")
    assert tv.current_app == APP_DASHCAST
    assert tv.dashcast_loads[0]["url"] == first and tv.dashcast_loads[0]["sessionId"] == tv.session_id
    status = cd.wait_state("streaming", timeout=10)
    assert status["mode"] == "direct" and status["stream_url"] is None and status["frames"] == 0
    assert wait_device(cd, spec(tv), "playing")["stream_url"] == first
    assert cd.get("/health").status_code == 200

    switched = start(cd, second, device=spec(tv), mode="direct")  # a switch: DashCast loads the new page
    assert switched["switched"]
    tv.wait_for(lambda: len(tv.dashcast_loads) == 2, timeout=10)
    assert tv.dashcast_loads[1]["url"] == second and tv.loads == []

    cd.post("/stop")
    tv.wait_for(lambda: tv.current_app is None, timeout=10, what="DashCast quit")


# ---- the cast worker dies --------------------------------------------------------------------------
def test_cast_worker_sigkill_is_restarted_and_the_tv_plays_on(tv, cd, pages):
    cast_and_play(cd, tv, pages.url("/color/ff0000"))
    cast = cd.status()["cast"]
    pid, restarts = cast["worker_pid"], cast["worker_restarts"]
    assert pid and process_identity(pid)
    os.kill(pid, signal.SIGKILL)  # as a pychromecast segfault would
    wait_for(lambda: (c := cd.status()["cast"])["worker_pid"] not in (None, pid) and c, 15,
             message="a new cast worker")
    tv.wait_for(lambda: tv.total_connections >= 2, timeout=15, what="the new worker connects")
    wait_device(cd, spec(tv), "playing")
    assert cd.status()["cast"]["worker_restarts"] == restarts + 1
    assert len(tv.loads) == 1  # it found the TV still playing castd's stream and adopted it
    assert cd.status()["state"] == "streaming"
    cd.post("/stop")
    tv.wait_for(lambda: tv.current_app is None, timeout=10, what="the new worker quits the app it adopted")


# ---- sharing the TV (castd/cast/takeover.py decides; test_takeover.py has the whole table) -----------
def receiver_asks(tv: FakeCastDevice, since: int) -> int:
    return [p.get("type") for ns, p in tv.messages[since:] if ns == NS_RECEIVER].count("GET_STATUS")


def launches_and_loads(tv: FakeCastDevice, since: int) -> list[str]:
    return [p.get("type") for ns, p in tv.messages[since:] if p.get("type") in ("LAUNCH", "LOAD")]


def test_when_idle_waits_while_netflix_plays_and_casts_when_it_quits(tv, cd, pages):
    tv.switch_app(APP_NETFLIX, "Netflix")  # Netflix keeps no media status: its app is all castd sees
    before = len(tv.messages)
    started = start(cd, pages.url("/color/ff0000"), device=spec(tv), takeover="when-idle")
    assert started["state"] == "starting" and started["waiting"] == []  # answered at once: not known yet
    dev = wait_device(cd, spec(tv), "waiting")
    assert dev["app"] == "Netflix" and "Netflix is on the device" in dev["reason"], dev
    cd.wait_state("streaming", timeout=30)  # the stream is ready for the moment the TV is free
    # now castd knows: a start's answer says the TV waits, and for which app; one that may take the TV does not
    again = start(cd, pages.url("/color/0000ff"), device=spec(tv), takeover="when-idle")
    assert [(w["device"], w["state"], w["app"]) for w in again["waiting"]] == [(spec(tv), "waiting", "Netflix")]
    assert "when-idle" in again["waiting"][0]["reason"]
    # past the point where castd would have acted: two more status questions after the stream was ready
    asked = receiver_asks(tv, before)
    tv.wait_for(lambda: receiver_asks(tv, before) >= asked + 2, timeout=10, what="castd keeps asking while it waits")
    assert launches_and_loads(tv, before) == [] and tv.current_app == APP_NETFLIX
    assert device(cd, spec(tv))["state"] == "waiting" and cd.status()["state"] == "streaming"

    assert tv.quit_app(idle_screen=True)  # the film ends; the idle screen comes up
    tv.wait_for(lambda: tv.player_state == "PLAYING", timeout=10, what="castd casts to the free TV")
    assert launches_and_loads(tv, before) == ["LAUNCH", "LOAD"] and tv.current_app == APP_MEDIA_RECEIVER
    dev = wait_device(cd, spec(tv), "playing")
    assert dev["app"] is None and dev["reloads"] == 0
    assert tv.volume_log == []  # the default leaves the volume alone
    assert "the cast device is not free; castd waits" in cd.log()


def test_sticky_comes_back_after_youtube_twice_and_steps_aside_each_time(tv, cd, pages):
    cast_and_play(cd, tv, pages.url("/color/ff0000"), takeover="when-idle", sticky=True)
    for round_ in (2, 3):
        tv.switch_app()  # a person casts YouTube
        dev = wait_device(cd, spec(tv), "waiting")
        assert dev["app"] == "YouTube" and "comes back" in dev["reason"]
        before = len(tv.messages)
        tv.wait_for(lambda b=before: receiver_asks(tv, b) >= 1, timeout=10, what="castd waits YouTube out")
        assert launches_and_loads(tv, before) == [] and tv.current_app == APP_YOUTUBE
        assert tv.quit_app()  # the video ends
        tv.wait_for(lambda r=round_: len(tv.loads) == r and tv.player_state == "PLAYING", timeout=10,
                    what="castd comes back")
        wait_device(cd, spec(tv), "playing")
    assert cd.status()["state"] == "streaming"


def test_a_tv_in_standby_with_wake_false_gets_nothing_until_it_wakes(tv, cd, pages):
    tv.set_standby(True)
    before = len(tv.messages)
    start(cd, pages.url("/color/ff0000"), device=spec(tv), wake=False)
    dev = wait_device(cd, spec(tv), "waiting")
    assert "standby" in dev["reason"] and "wake = false" in dev["reason"]
    cd.wait_state("streaming", timeout=30)
    asked = receiver_asks(tv, before)
    tv.wait_for(lambda: receiver_asks(tv, before) >= asked + 1, timeout=10, what="castd keeps asking")
    assert launches_and_loads(tv, before) == [] and tv.standby
    tv.set_standby(False)  # someone turned the TV on
    tv.wait_for(lambda: tv.player_state == "PLAYING", timeout=10, what="castd casts to the woken TV")
    assert launches_and_loads(tv, before) == ["LAUNCH", "LOAD"]


def test_the_idle_screen_over_castds_session_gets_a_new_load(tv, cd, pages):
    cast_and_play(cd, tv, pages.url("/color/ff0000"))
    tv.show_idle_screen()  # ambient mode covers the picture; nobody chose it
    tv.wait_for(lambda: len(tv.loads) == 2 and tv.player_state == "PLAYING", timeout=10, what="castd loads again")
    assert tv.current_app == APP_MEDIA_RECEIVER and APP_BACKDROP != tv.current_app
    dev = wait_for(lambda: (d := device(cd, spec(tv)))["reloads"] == 1 and d["state"] == "playing" and d, 10,
                   message="the re-LOAD counted")
    assert "idle screen" in dev["reload_reason"]
    tv.set_standby(True)  # the TV went to standby under castd's picture: a LAUNCH wakes it (CEC), then a LOAD
    tv.wait_for(lambda: len(tv.loads) == 3 and tv.player_state == "PLAYING", timeout=10, what="woken and loaded")
    assert not tv.standby
    dev = wait_for(lambda: (d := device(cd, spec(tv)))["reloads"] == 2 and d, 10, message="the second re-LOAD")
    assert "standby" in dev["reload_reason"]


def test_volume_silent_start_and_restore_are_exact(tv, cd, pages):
    tv.set_volume(level=0.8, muted=False)  # the household's own level
    cast_and_play(cd, tv, pages.url("/color/ff0000"), volume=30, silent_start=True, restore_volume=True)
    tv.wait_for(lambda: len(tv.volume_log) >= 2, timeout=10, what="the unmute after the first frame")
    assert tv.volume_log[:2] == [{"level": 0.3, "muted": True}, {"muted": False}]
    launch = next(i for i, (ns, p) in enumerate(tv.messages) if p.get("type") == "LAUNCH")
    muted_at = next(i for i, (ns, p) in enumerate(tv.messages) if p.get("type") == "SET_VOLUME")
    assert muted_at < launch  # muted before the launch: no chime
    assert tv.volume == {**tv.volume, "level": 0.3, "muted": False}
    # (/status hears the unmute with the device's next status: Debian 13's CI read it muted just before)
    wait_for(lambda: (d := device(cd, spec(tv)))["volume"] == 30 and d["muted"] is False and d, 10,
             message="/status volume 30, unmuted")
    cd.post("/stop")
    tv.wait_for(lambda: tv.current_app is None, timeout=10, what="castd's app quit")
    assert tv.volume_log[-1] == {"level": 0.8, "muted": False} and tv.volume["level"] == 0.8


# ---- one device, one identity ------------------------------------------------------------------------
def test_one_tv_named_two_ways_is_one_link_and_a_new_session_does_not_quit_its_app(tv, cd, pages):
    cast_and_play(cd, tv, pages.url("/color/ff0000"))  # as 127.0.0.1:<port>
    connections, app = tv.total_connections, tv.session_id
    other = f"localhost:{tv.port}"  # the same TV, spelled another way
    second = start(cd, pages.url("/color/00ff00"), device=other)  # other devices: a new session
    assert not second["switched"]
    tv.wait_for(lambda: len(tv.loads) == 2 and tv.player_state == "PLAYING", timeout=30, what="the new LOAD")
    wait_device(cd, other, "playing")
    wait_for(lambda: cd.status()["cast"]["stopping"] == 0, 10, message="the old session's stop settled")
    assert "STOP" not in sent_types(tv, NS_RECEIVER) and tv.session_id == app  # nobody quit castd's app
    assert tv.total_connections == connections  # one link, one connection
    assert "the TV went on to a new session as " + other in cd.log()

    both = start(cd, pages.url("/color/0000ff"), device=[spec(tv), other])  # twice in one session
    tv.wait_for(lambda: len(tv.loads) == 3 and tv.player_state == "PLAYING", timeout=30, what="one LOAD")
    # castd hears PLAYING a status after the fake plays (Debian 13's run read "loading" a moment early)
    devices = wait_for(lambda: (ds := {d["device"]: d for d in cd.status()["cast"]["devices"]})
                       and ds.get(other, {}).get("state") == "failed"
                       and ds.get(spec(tv), {}).get("state") == "playing" and ds, 10,
                       message="the duplicate failed and the TV playing")
    assert "the same TV as" in devices[other]["reason"]
    assert cd.status()["state"] == "streaming" and both["session"] != second["session"]


def test_a_silent_start_that_never_played_is_not_left_muted(tv, cd, pages):
    """silent_start mutes before the launch; YouTube takes the TV before castd's picture ever played (the page
    takes 3 s to answer): castd steps aside and unmutes on its way out."""
    start(cd, pages.url("/slow/3"), device=spec(tv), silent_start=True)
    tv.wait_for(lambda: tv.current_app == APP_MEDIA_RECEIVER and tv.volume["muted"], timeout=10,
                what="muted, castd's app up")
    assert tv.loads == []  # the page is not there yet: nothing played, nothing unmuted it
    tv.switch_app()
    cd.wait_state("idle", timeout=10)  # the viewer took the only TV: the session ends
    tv.wait_for(lambda: not tv.volume["muted"], timeout=5, what="unmuted on the way out")
    assert tv.volume_log == [{"muted": True}, {"muted": False}] and tv.loads == []


# ---- never giving up for good ---------------------------------------------------------------------
def test_a_tv_given_up_is_tried_again_later_with_backoff_until_it_is_back(tv, pages, tmp_path):
    """A TV switched off at the wall: after cast_retries failed tries castd rests (`retrying`, with when),
    tries again a round later (the rest doubling), and casts as soon as a round finds it back; a stop ends it."""
    env = {**CAST_ENV, "CASTD_CAST_RETRIES": "1", "CASTD_CAST_RETRY_SECONDS": "1"}
    d = Daemon(runtime_dir=tmp_path / "run", env_extra=env).start()
    try:
        tv.refuse_connections(True)
        start(d, pages.url("/color/ff0000"), device=spec(tv))
        first = wait_device(d, spec(tv), "retrying")
        assert "gave up after 2 tries; trying again in 1s" in first["reason"], first
        assert first["retry_in"] is not None and first["retry_in"] <= 1
        second = wait_for(lambda: "trying again in 2s" in ((dev := device(d, spec(tv))).get("reason") or "") and dev,
                          15, message=f"a second round, resting twice as long (now {device(d, spec(tv))})")
        assert second["state"] == "retrying" and 0 < second["retry_in"] <= 2
        assert "trying again after a give-up" in d.log()
        tv.refuse_connections(False)
        tv.wait_for(lambda: tv.player_state == "PLAYING", timeout=30, what="the next round casts")
        wait_device(d, spec(tv), "playing")
        assert d.status()["state"] == "streaming" and len(tv.loads) == 1
        idle(d)  # a person's stop still ends it, and quits castd's app on the TV
        assert tv.current_app is None
    finally:
        d.finish()
