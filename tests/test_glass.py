"""The glass harness itself (tests/glass): castd's stream, played by the real Shaka Player of each line the
Cast receiver may run (4.9.2, 4.15, 4.16, 5.x), presents the colour the page drew, in the default stream
format and (on the receiver's own two lines, 4.9.2 and 4.15) in the other one; and the harness ends every
process it starts. Long runs (stalls, kills, many switches per format and line) are in bench/glass.py.

The lines play side by side, one headless Chromium each, on one session: a player's wait is mostly the
stream's (HOLD-BACK 3 s, then a switch's ~3.4 s to the glass), so four players take about as long as one
(was one line per test: ~7 s each, 40 s for the six on a quiet machine).
"""

from __future__ import annotations

import pytest
from helpers import Daemon, media_playlist_url, still_alive

from castd.presets import DEFAULT_STREAM_FORMAT, STREAM_FORMATS
from glass import LINES, VERSIONS, PageServer, ShakaPlayer
from glass.player import Line

# the format that is not the default: "hls-1s" or "hls-fast" (the two bench/README.md compares)
OTHER_FORMAT = "hls-1s" if DEFAULT_STREAM_FORMAT != "hls-1s" else "hls-fast"
RECEIVER_LINES: tuple[Line, ...] = ("shaka49", "shaka415")  # the Cast framework's Shaka today, and the one it announced
LOW_LATENCY_LINES: tuple[Line, ...] = ("shaka4", "shaka5")  # streaming.lowLatencyMode on by default (presets.py)


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


# Shaka's requests for the media playlist, as the browser timed them (the URL's query included)
PLAYLIST_REQUESTS = ("return performance.getEntriesByType('resource').map(e => e.name)"
                     ".filter(n => n.includes('/stream.m3u8'))")


def plays_a_start_and_a_switch(castd, pages, lines: tuple[Line, ...], stream_format: str) -> None:
    """Every line in `lines` at once: each player LOADed on a new session's stream presents its colour,
    plays, and presents the colour of a page switch; then none of their processes is left. In a format with
    partial segments, 4.16 and 5.x (lowLatencyMode on by default) must have asked for the playlist as
    Low-Latency HLS does (`_HLS_part`, a blocking reload of the next partial segment); no other line ever."""
    low_latency = LOW_LATENCY_LINES if STREAM_FORMATS[stream_format].part_hold_back is not None else ()
    first, second = ((255, 0, 0), "ff0000"), ((0, 0, 255), "0000ff")
    started = castd.post("/start", json={"url": pages.url(f"/color/{first[1]}")})
    assert started.status_code == 200, started.text
    castd.wait_state("streaming", 30)
    assert castd.status()["stream_format"] == stream_format
    server, players, seen = PageServer(), [], set()
    try:
        for line in lines:
            players.append(ShakaPlayer(line, server=server))
            assert players[-1].version.startswith(VERSIONS[line]), (line, players[-1].version)
        for player in players:
            player.load(started.json()["stream_url"])
        for player in players:  # (each message names its line)
            player.wait_colour(first[0], timeout=30)
            player.wait_playing(30)
        switched = castd.post("/start", json={"url": pages.url(f"/color/{second[1]}")})
        assert switched.status_code == 200, switched.text
        for player in players:
            player.wait_colour(second[0], timeout=30)
            state = player.state()
            assert not state.critical, (player.line, state.errors)
            assert state.current_time > 0 and state.frames > 0, player.line
            assert state.behind_live_edge is not None and state.behind_live_edge > 0, player.line
            asked = player._script(PLAYLIST_REQUESTS)
            assert any("_HLS_part=" in url for url in asked) == (player.line in low_latency), (player.line, asked)
            seen |= player.record()
    finally:
        for player in players:
            player.close()
        server.close()
    playlist = castd.get(media_playlist_url(started.json()["stream_url"]).removeprefix(castd.base)).text
    assert ("#EXT-X-START:" in playlist) == (stream_format != "hls-1s"), playlist
    assert seen, "the harness saw no Chromium processes"
    assert not still_alive(seen), "the Shaka harness left processes behind"


def test_every_shaka_line_plays_castd_and_presents_the_page_colour(castd, pages):
    plays_a_start_and_a_switch(castd, pages, LINES, DEFAULT_STREAM_FORMAT)


def test_the_receivers_shaka_lines_play_the_other_stream_format(castd_other, pages):
    plays_a_start_and_a_switch(castd_other, pages, RECEIVER_LINES, OTHER_FORMAT)


def test_partial_segments_put_4_16_and_5_in_low_latency_mode_and_4_15_and_4_9_play_them_as_before(
        tmp_path_factory, pages):
    """hls-fast-parts (presets.py): Shaka 4.16 and 5.x (lowLatencyMode on by default) ask for the playlist by
    its next partial segment, held by castd until it is listed (api/blocking.py); 4.9.2 and 4.15 (off) play the
    same stream without them. Every line presents the page and a switch."""
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("glass-parts") / "run",
               env_extra={"CASTD_STREAM_FORMAT": "hls-fast-parts"}).start()
    try:
        plays_a_start_and_a_switch(d, pages, LINES, "hls-fast-parts")
    finally:
        d.finish()
