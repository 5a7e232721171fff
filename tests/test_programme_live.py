"""Playlists, interrupts and resume against the real daemon: real Chromium, the real stream decoded
segment by segment, the real pychromecast against the fake Cast device, real clock.

A playlist of three colour pages shows each colour in the served stream in order, in one session
with one stream URL and one LOAD; an interrupt gives the screen back to the same item; kill -9 of
the whole daemon and a restart bring the same playlist back at the same item. One daemon (replaced
once, by the restart) for the module."""

import os
import re
import signal
import struct
import subprocess
import sys
import time
import zoneinfo

import pytest
from fakecast import FakeCastDevice
from helpers import (ROOT, Daemon, close_to, cmdline, descendants, fetch_segment, last_frame_of, media_playlist_url,
                     rgb_at, segment_urls, still_alive, wait_for)

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "white": (255, 255, 255)}


def config_text(pages) -> str:
    boards = "".join(f'[[dashboards]]\nname = "{name}"\nurl = "{pages.url("/color/%02x%02x%02x" % rgb)}"\n\n'
                     for name, rgb in COLOURS.items())
    return boards + (
        '[[playlists]]\nname = "rgb"\n'
        'items = [{dashboard = "red", seconds = 4}, {dashboard = "green", seconds = 4},'
        ' {dashboard = "blue", seconds = 4}]\n\n'
        '[[playlists]]\nname = "slow"\n'
        'items = [{dashboard = "red", seconds = 60}, {dashboard = "green", seconds = 60},'
        ' {dashboard = "blue", seconds = 60}]\n')


class Holder:
    """The module's daemon; the resume test replaces it with the restarted one."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon


@pytest.fixture(scope="module")
def live(tmp_path_factory, pages):
    folder = tmp_path_factory.mktemp("programme")
    (folder / "castd.toml").write_text(config_text(pages))
    env = {"CASTD_STATE_DIR": str(folder / "state"), "CASTD_MDNS_INTERFACES": "127.0.0.1",
           "CASTD_CAST_CONNECT_TIMEOUT": "3", "CASTD_CAST_LOAD_TIMEOUT": "10"}
    holder = Holder(Daemon(runtime_dir=folder / "run", env_extra=env,
                           args=["--config", str(folder / "castd.toml")]).start())
    holder.folder, holder.env = folder, env
    yield holder
    holder.daemon.finish()


def castd_cli(d: Daemon, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTD_")}
    return subprocess.run([sys.executable, "-m", "castd", *args], capture_output=True, text=True, timeout=60,
                          env={**env, "CASTD_PORT": str(d.port)}, cwd=ROOT)


def colour_of(data: bytes) -> str | None:
    frame = last_frame_of(data)
    if frame is None:
        return None
    pixel = rgb_at(frame, frame.width // 2, frame.height // 2)
    return next((name for name, rgb in COLOURS.items() if close_to(pixel, rgb)), None)


def watch_colours(stream_url: str, seconds: float, enough: int = 0) -> list[str]:
    """The colours of the segments the stream lists, in order, for `seconds` or until `enough` colours
    were seen (repeats collapsed)."""
    media = media_playlist_url(stream_url)
    seen_urls: set[str] = set()
    colours: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (enough and len(colours) >= enough):
        for url in segment_urls(media):
            if url in seen_urls:
                continue
            seen_urls.add(url)
            colour = colour_of(fetch_segment(url))
            if colour and (not colours or colours[-1] != colour):
                colours.append(colour)
        time.sleep(0.3)
    return colours


def newest_colour(stream_url: str) -> str | None:
    urls = segment_urls(media_playlist_url(stream_url))
    return colour_of(fetch_segment(urls[-1])) if urls else None


def test_a_playlist_rotates_in_one_session_with_one_stream_url_and_one_load(live):
    d = live.daemon
    with FakeCastDevice(name=f"castd playlist TV {os.getpid()}") as tv:
        started = d.post("/start", json={"playlist": "rgb", "device": f"127.0.0.1:{tv.port}"})
        assert started.status_code == 200, started.text
        body = started.json()
        assert body["playlist"] == "rgb" and body["url"].endswith("/color/ff0000")
        tv.wait_for(lambda: tv.player_state == "PLAYING", timeout=40, what="the fake plays the playlist")
        colours = watch_colours(body["stream_url"], 30, enough=4)  # red, green, blue, red: ~12 s
        status = d.status()
        assert status["session"] == body["session"] and status["stream_url"] == body["stream_url"]
        assert status["playlist"] == "rgb" and status["items"] == 3 and status["source"] == "manual"
        assert status["next_switch_at"] is not None and 0 < status["next_switch_at"] - time.time() <= 4.5
        order = ["red", "green", "blue"]
        assert len(colours) >= 4 and set(colours) == set(order), colours  # every item, and round again
        assert all(order[(order.index(a) + 1) % 3] == b for a, b in zip(colours, colours[1:])), colours
        assert len(tv.loads) == 1, tv.loads  # every item was a page switch inside the one session
        assert [dev["state"] for dev in status["cast"]["devices"]] == ["playing"]
        d.post("/stop")
        d.wait_state("idle", 30)
        wait_for(lambda: d.status()["cast"]["stopping"] == 0, 30, message="the fake stopped")


def test_an_interrupt_returns_to_the_same_item(live):
    d = live.daemon
    started = d.post("/start", json={"playlist": "slow"}).json()
    wait_for(lambda: d.status()["state"] == "streaming", 40, message="streaming")
    out = castd_cli(d, "next")  # the CLI's POST /next: green, with its full 60 s from now
    assert out.returncode == 0 and "playlist slow item 2 (green)" in out.stdout, out
    wait_for(lambda: newest_colour(started["stream_url"]) == "green", 20, message="green in the stream")
    interrupt = d.post("/start", json={"dashboard": "white", "duration": 4, "then": "resume"})
    assert interrupt.status_code == 200 and interrupt.json()["switched"] is True, interrupt.text
    during = wait_for(lambda: (s := d.status())["dashboard"] == "white" and s, 10, message="the interrupt")
    assert during["source"] == "interrupt" and during["interrupts"] == 1 and during["session"] == started["session"]
    wait_for(lambda: newest_colour(started["stream_url"]) == "white", 20, message="white in the stream")
    back = wait_for(lambda: (s := d.status())["dashboard"] == "green" and s, 15, message="back to green")
    assert back["item"] == 1 and back["playlist"] == "slow" and back["interrupts"] == 0
    assert back["session"] == started["session"] and back["next_switch_at"] - time.time() > 40
    wait_for(lambda: newest_colour(started["stream_url"]) == "green", 20, message="green in the stream again")
    d.post("/stop")
    d.wait_state("idle", 30)


def test_kill_9_and_a_restart_bring_the_same_playlist_back(live):
    d = live.daemon
    out = castd_cli(d, "start", "--playlist", "slow")
    assert out.returncode == 0 and "casting playlist slow dashboard red" in out.stdout, out
    started = d.status()
    wait_for(lambda: d.status()["state"] == "streaming", 40, message="streaming")
    d.post("/next")
    d.post("/next")  # blue
    wait_for(lambda: newest_colour(started["stream_url"]) == "blue", 20, message="blue in the stream")
    below = d.record_descendants()
    os.kill(d.process.pid, signal.SIGKILL)  # the whole daemon's main process, no goodbye
    d.process.wait(10)
    try:
        wait_for(lambda: not still_alive(below), 20, message="castd's children ending after it")
    except AssertionError:
        raise AssertionError({pid: cmdline(pid) for pid, _ in still_alive(below)}) from None
    again = Daemon(runtime_dir=live.folder / "run", env_extra=live.env,
                   args=["--config", str(live.folder / "castd.toml")])
    live.daemon = again
    again.start()
    status = wait_for(lambda: (s := again.status())["state"] == "streaming" and s, 40, message="resumed streaming")
    assert status["session"] == started["session"] and status["playlist"] == "slow" and status["item"] == 2
    assert status["stream_url"].rsplit("/stream/", 1)[1] == started["stream_url"].rsplit("/stream/", 1)[1]
    wait_for(lambda: newest_colour(status["stream_url"]) == "blue", 20, message="blue in the resumed stream")
    assert "session resumed" in again.log()
    again.post("/stop")
    again.wait_state("idle", 30)
    restarted = Daemon(runtime_dir=live.folder / "run2", env_extra=live.env,
                       args=["--config", str(live.folder / "castd.toml")]).start()
    try:  # after a /stop nothing comes back
        time.sleep(1.0)
        assert restarted.status()["state"] == "idle"
    finally:
        restarted.finish()
    assert descendants(again.process.pid)  # the module's daemon is still the restarted one


def zone_with_a_minute_boundary_at(folder, at: int) -> tuple[dict[str, str], str]:
    """A time zone (a TZif file on PYTHONTZPATH) whose UTC offset of 0-59 s puts a minute boundary at the
    epoch second `at`: (the environment that makes zoneinfo find it, its name). Schedules are written in
    whole minutes; in UTC the window's end is the next minute boundary at least 25 s away, 25-85 s (55 s on
    average, 61 s measured under load) of waiting; in this zone it is exactly as far as the test needs."""
    offset = -at % 60
    abbr = b"TST\0"
    # TZif version 2 (RFC 8536): no transitions, one local time type, the same block for 32- and 64-bit
    # times, then the POSIX TZ string for every time after (its offset is west of UTC, so negated)
    block = b"TZif2" + bytes(15) + struct.pack(">6l", 0, 0, 0, 0, 1, len(abbr)) + struct.pack(">lBB", offset, 0, 0)
    block += abbr
    (folder / "Test").mkdir(parents=True, exist_ok=True)
    (folder / "Test" / "Shifted").write_bytes(block + block + f"\n<TST>-0:00:{offset:02d}\n".encode())
    return {"PYTHONTZPATH": os.pathsep.join((str(folder), *zoneinfo.TZPATH))}, "Test/Shifted"  # + the system's


def test_a_schedule_starts_and_stops_castd_by_itself(tmp_path, pages):
    """Real clock: a window on when castd starts, ending at a minute boundary of its time zone 20 s on.
    The 20 s are castd's start (daemon, Chromium, first segment: 4 s from writing the config to the first
    segment at load average 13) and the checks below, with room for a loaded machine; was 30 s."""
    from datetime import datetime, timedelta, timezone

    end_at = int(time.time()) + 20
    env, zone = zone_with_a_minute_boundary_at(tmp_path / "zoneinfo", end_at)
    local_end = datetime.fromtimestamp(end_at + (-end_at % 60), timezone.utc)  # the wall clock there
    assert local_end.second == 0
    start = local_end - timedelta(minutes=3)
    (tmp_path / "castd.toml").write_text(config_text(pages) + (
        f'[[schedules]]\nname = "test window"\nstart = "{start:%H:%M}"\nend = "{local_end:%H:%M}"\n'
        f'timezone = "{zone}"\ndashboard = "green"\n'))
    d = Daemon(runtime_dir=tmp_path / "run", env_extra=env, args=["--config", str(tmp_path / "castd.toml")]).start()
    try:
        status = wait_for(lambda: (s := d.status())["state"] == "streaming" and s, 60, message="the window on")
        assert (status["source"], status["schedule"], status["dashboard"]) == ("schedule", "test window", "green")
        assert status["ends_at"] == end_at and status["ends_by"] == "schedule"  # `castd status`: the schedule's end
        assert re.search(r'session start .*source=schedule schedule="test window"', d.log())  # named in the log
        listing = d.get("/dashboards").json()["schedules"]
        assert listing[0]["active"] is True and listing[0]["name"] == "test window"
        wait_for(lambda: newest_colour(status["stream_url"]) == "green", 20, message="green in the stream")
        wait_for(lambda: d.status()["state"] == "idle", end_at - time.time() + 20, interval=0.2,
                 message="the window's end")
        assert time.time() >= end_at - 0.3  # not before its end
        assert "session stop" in d.log()
    finally:
        d.finish()
