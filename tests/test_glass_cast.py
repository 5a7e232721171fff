"""Casting at the glass: the real daemon casts to a fake device whose player is the real Shaka Player 4.16
(the Cast receiver's HLS engine, tests/fakecast/engine.py), and the checks read what that player presents.

One daemon and one device (one headless Chromium) for the whole module, in order: the first LOAD, ten page
switches, 60 s from the LOAD without a stall (longer plays are bench.glasssoak's 10 minutes:
the suite stays under 15 minutes), a player frozen on purpose (castd LOADs again), a
viewer's pause (left alone), three encoder SIGKILLs the player rides through without a new LOAD, and last
RFC 8216's rules and EXTINF-vs-content on every playlist and segment served meanwhile.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from helpers import Daemon, media_playlist_url, wait_for
from hlsrules import PlaylistWatch

from castd.presets import get_preset
from fakecast import FakeCastDevice

PLAY_SECONDS = 60  # from the LOAD, the ten switches included (they take ~45 s)
STALL_SECONDS = 5.0  # castd's default cast_stall_seconds
CAST_ENV = {
    "CASTD_MDNS_INTERFACES": "127.0.0.1",
    "CASTD_CAST_CONNECT_TIMEOUT": "5",
    "CASTD_CAST_LOAD_TIMEOUT": "20",
    "CASTD_CAST_STALL_SECONDS": str(STALL_SECONDS),
}
# Ten page colours, each far from the one before it (sum of channel differences >= 190): after H.264 and
# back to RGB in the player a colour comes out up to ~45 off (#00ff00 was presented as 0,216,2).
PALETTE = ["ff0000", "00ff00", "0000ff", "ffff00", "ff00ff", "00ffff", "ffffff", "000000", "808080", "004080"]
TOLERANCE = 80
FRAME = 0.1  # seconds: castd's 10 fps; a buffering spell shorter than a frame holds no picture longer


def rgb(hexcolour: str) -> tuple[int, int, int]:
    return int(hexcolour[0:2], 16), int(hexcolour[2:4], 16), int(hexcolour[4:6], 16)


@pytest.fixture(scope="module")
def castd(tmp_path_factory):
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("glass-cast") / "run", env_extra=CAST_ENV).start()
    yield d
    d.finish()


@pytest.fixture(scope="module")
def tv():
    with FakeCastDevice(name=f"glass TV {os.getpid()}", engine="shaka4") as device:
        yield device


@pytest.fixture(scope="module")
def session(castd, tv, pages):
    """The module's one cast: started once, on the first colour; the tests below go on with it. Every
    version of the media playlist served meanwhile, and every segment, is kept for the last check."""
    started_at = time.time()
    response = castd.post("/start", json={"url": pages.url(f"/color/{PALETTE[0]}"), "device": spec(tv)})
    assert response.status_code == 200, response.text
    master = response.json()["stream_url"]
    wait_for(lambda: castd.get(master.removeprefix(castd.base)).status_code == 200, 40, message="master playlist")
    with PlaylistWatch(media_playlist_url(master), interval=0.2) as watch:
        yield {"started_at": started_at, "session": response.json()["session"], "watch": watch}


def spec(tv: FakeCastDevice) -> str:
    return f"127.0.0.1:{tv.port}"


def device(castd: Daemon, tv: FakeCastDevice) -> dict:
    return next((d for d in castd.status()["cast"]["devices"] if d["device"] == spec(tv)), {})


def advancing(tv: FakeCastDevice, seconds: float = 2.0, timeout: float = 20.0):
    """Wait until the player has presented `seconds` of new frames (at castd's 10 fps) and its currentTime
    moved on as far. Frames count, not currentTime alone: a starved Shaka jumps currentTime ahead while it
    presents nothing."""
    first = tv.player
    frames = int(seconds * 10 * 0.8)  # headless Chromium drops a few (~3%)
    return wait_for(lambda: (s := tv.player).frames >= first.frames + frames
                    and s.current_time >= first.current_time + seconds * 0.8 and s, timeout,
                    message=f"the player presenting {seconds:g}s of new frames (from frame {first.frames}, "
                            f"currentTime {first.current_time:.2f}; now {tv.player_state})")


def test_start_shows_the_page_colour_in_the_player(castd, tv, session):
    seen = tv.wait_colour(rgb(PALETTE[0]), timeout=40, after=session["started_at"], tolerance=TOLERANCE)
    tv.wait_for(lambda: tv.player_state == "PLAYING", timeout=20, what="MEDIA_STATUS PLAYING from the player")
    wait_for(lambda: device(castd, tv).get("state") == "playing", 20, message="castd sees the device playing")
    assert seen.t > session["started_at"]
    assert len(tv.loads) == 1
    assert not tv.player.critical, tv.player.errors


def test_ten_page_switches_each_colour_appears_in_the_player(castd, tv, session, pages):
    loads = len(tv.loads)
    for colour in PALETTE[1:] + PALETTE[:1]:
        sent = time.time()
        response = castd.post("/start", json={"url": pages.url(f"/color/{colour}"), "device": spec(tv)})
        assert response.status_code == 200, response.text
        tv.wait_colour(rgb(colour), timeout=30, after=sent, tolerance=TOLERANCE)
    assert len(tv.loads) == loads, "a page switch must send the TV nothing"
    assert device(castd, tv)["reloads"] == 0


def test_a_minute_from_the_load_without_a_stall(castd, tv, session):
    """Counted from the LOAD on, page switches included: Shaka's own buffering events after its first frame.
    Was 3 minutes (issue 11), then 90 s; 60 s keeps the ten switches and ~15 s of steady play after them.
    The defect it was written for, a player LOADed ~0.9 s behind the edge, stalled 5 times in its first
    40 s and 4-13 times a minute (bench/README.md), so a minute still finds it; the long plays that count
    rare stalls are bench.glasssoak's (10 minutes per line, link and page), out of the Debian 12 suite's 15 minutes."""
    remaining = session["started_at"] + PLAY_SECONDS - time.time()
    if remaining > 0:
        time.sleep(remaining)
    state = tv.player
    assert state.playing and not state.critical, (tv.player_state, state.errors)
    assert len(tv.loads) == 1, "the player was never LOADed again"
    visible = state.stalls_of_a_frame_or_more(FRAME)
    assert visible == [], (f"{len(visible)} stalls of a frame or more; every buffering spell (s): "
                           f"{[(round(s.at, 2), round(s.seconds(state.now), 3)) for s in state.stalls]}")


def test_a_frozen_player_is_loaded_again(castd, tv, session):
    advancing(tv, seconds=1.0)
    loads, reloads = len(tv.loads), device(castd, tv)["reloads"]
    tv.freeze_player("segments")  # every segment fetch hangs: the buffer runs dry, Shaka sits in BUFFERING
    wait_for(lambda: len(tv.loads) > loads, 40, message="castd LOADs the frozen player again")
    dev = wait_for(lambda: (d := device(castd, tv))["reloads"] > reloads and d, 10,
                   message="the reload counted in /status")
    assert dev["reload_reason"].startswith("stuck buffering"), dev["reload_reason"]
    tv.wait_for(lambda: tv.player_state == "PLAYING", timeout=30, what="playing again after the new LOAD")
    advancing(tv, seconds=2.0)
    assert device(castd, tv)["media_time"] is not None


def test_a_viewer_pause_is_left_alone(castd, tv, session):
    advancing(tv, seconds=1.0)
    loads, reloads = len(tv.loads), device(castd, tv)["reloads"]
    assert tv.viewer_pause()
    wait_for(lambda: device(castd, tv).get("state") == "paused", 10, message="castd sees the pause")
    time.sleep(STALL_SECONDS * 2.5)
    assert tv.player.paused and tv.player_state == "PAUSED"
    assert (len(tv.loads), device(castd, tv)["reloads"]) == (loads, reloads), "a pause is not a freeze"
    assert tv.viewer_pause(False)
    wait_for(lambda: device(castd, tv).get("state") == "playing", 10, message="castd sees it play again")
    advancing(tv, seconds=2.0)
    assert (len(tv.loads), device(castd, tv)["reloads"]) == (loads, reloads)


def test_three_encoder_sigkills_the_player_resumes_without_a_new_load(castd, tv, session):
    loads, reloads = len(tv.loads), device(castd, tv)["reloads"]
    for _ in range(3):
        status = castd.status()
        pid = status["encoder_pid"]
        os.kill(pid, signal.SIGKILL)
        killed = time.time()
        wait_for(lambda: castd.status()["encoder_pid"] not in (None, pid), 20, message="a new encoder")
        wait_for(lambda: tv.player.now > killed + 0.5, 5, message="a reading after the kill")
        after = advancing(tv, seconds=3.0, timeout=30)
        assert not after.critical, after.errors
    assert len(tv.loads) == loads, f"castd LOADed again: {device(castd, tv).get('reload_reason')}"
    assert device(castd, tv)["reloads"] == reloads


def test_every_playlist_served_during_the_cast_obeys_the_rules(castd, session):
    """RFC 8216's rules on every version of the playlist the player was served through all of the above,
    and every segment's media against its EXTINF: one timeline, a DISCONTINUITY for each SIGKILL only."""
    watch = session["watch"]
    watch.stop()
    problems = watch.problems(get_preset(castd.status()["quality"]).fps)
    assert problems == [], "\n".join(problems[:30])
    assert sum(s.discontinuity for s in watch.segments.values()) == 3
    print(f"\n{len(watch.segments)} segments seen")
    assert len(watch.segments) >= 80  # ~100 s of 1 s segments (129 seen with 90 s of play; 125 with 60 s at load 27)
