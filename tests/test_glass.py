"""The glass harness itself (tests/glass): castd's stream, played by the real Shaka Player of each line the
Cast receiver may run, presents the colour the page drew; and the harness ends every process it starts."""

from __future__ import annotations

import pytest
from helpers import Daemon, still_alive

from glass import LINES, VERSIONS, ShakaPlayer


@pytest.fixture(scope="module")
def castd(tmp_path_factory):
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("glass") / "run").start()
    yield d
    d.finish()


@pytest.mark.parametrize("line", LINES)
def test_shaka_plays_castd_and_presents_the_page_colour(castd, pages, line):
    colours = {"ff0000": (255, 0, 0), "0000ff": (0, 0, 255)}
    first, second = ("ff0000", "0000ff") if LINES.index(line) % 2 == 0 else ("0000ff", "ff0000")
    started = castd.post("/start", json={"url": pages.url(f"/color/{first}")})
    assert started.status_code == 200, started.text
    castd.wait_state("streaming", 30)
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
    assert seen, "the harness saw no Chromium processes"
    assert not still_alive(seen), "the Shaka harness left processes behind"
