"""The glass harness itself (tests/glass): castd's stream, played by the real Shaka Player of each line the
Cast receiver may run (4.9.2, 4.15, 4.16, 5.x), presents the colour the page drew, in the default stream
format and (on the receiver's own two lines, 4.9.2 and 4.15) in the other one; and the harness ends every
process it starts. Long runs (stalls, kills, many switches per format and line) are in bench/glass.py."""

from __future__ import annotations

import pytest
from helpers import Daemon, media_playlist_url, still_alive

from castd.presets import DEFAULT_STREAM_FORMAT
from glass import LINES, VERSIONS, ShakaPlayer

# the format that is not the default: "hls-1s" or "hls-fast" (the two bench/README.md compares)
OTHER_FORMAT = "hls-1s" if DEFAULT_STREAM_FORMAT != "hls-1s" else "hls-fast"
RECEIVER_LINES = ("shaka49", "shaka415")  # the Cast framework's Shaka today, and the one it announced


@pytest.fixture(scope="module")
def castd(tmp_path_factory):
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("glass") / "run").start()
    yield d
    d.finish()


@pytest.fixture(scope="module")
def castd_other(tmp_path_factory):
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("glass-other") / "run",
               env_extra={"CASTD_STREAM_FORMAT": OTHER_FORMAT}).start()
    yield d
    d.finish()


def plays_a_start_and_a_switch(castd, pages, line: str, stream_format: str) -> None:
    colours = {"ff0000": (255, 0, 0), "0000ff": (0, 0, 255)}
    first, second = ("ff0000", "0000ff") if LINES.index(line) % 2 == 0 else ("0000ff", "ff0000")
    started = castd.post("/start", json={"url": pages.url(f"/color/{first}")})
    assert started.status_code == 200, started.text
    castd.wait_state("streaming", 30)
    assert castd.status()["stream_format"] == stream_format
    with ShakaPlayer(line) as player:
        assert player.version.startswith(VERSIONS[line]), player.version
        player.load(started.json()["stream_url"])
        player.wait_colour(colours[first], timeout=30)
        player.wait_playing(30)
        switched = castd.post("/start", json={"url": pages.url(f"/color/{second}")})
        assert switched.status_code == 200, switched.text
        player.wait_colour(colours[second], timeout=30)
        state = player.state()
        assert not state.critical, state.errors
        assert state.current_time > 0 and state.frames > 0
        assert state.behind_live_edge is not None and state.behind_live_edge > 0
        seen = player.record()
    playlist = castd.get(media_playlist_url(started.json()["stream_url"]).removeprefix(castd.base)).text
    assert ("#EXT-X-START:" in playlist) == (stream_format != "hls-1s"), playlist
    assert seen, "the harness saw no Chromium processes"
    assert not still_alive(seen), "the Shaka harness left processes behind"


@pytest.mark.parametrize("line", LINES)
def test_shaka_plays_castd_and_presents_the_page_colour(castd, pages, line):
    plays_a_start_and_a_switch(castd, pages, line, DEFAULT_STREAM_FORMAT)


@pytest.mark.parametrize("line", RECEIVER_LINES)
def test_the_receivers_shaka_lines_play_the_other_stream_format(castd_other, pages, line):
    plays_a_start_and_a_switch(castd_other, pages, line, OTHER_FORMAT)
