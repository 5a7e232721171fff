"""Warm standby: Xvfb + Chromium stay ready at about:blank between sessions, and are reused."""

import httpx

from helpers import Daemon, children, descendants, media_playlist_url, still_alive, wait_for
from test_pipeline import BLUE, RED, newest_shows, start


def test_after_use_standby_reuses_the_child(tmp_path, pages):
    d = Daemon(runtime_dir=tmp_path / "run", env_extra={"CASTD_STANDBY": "after-use"}).start()
    try:
        first = start(d, pages.url("/color/ff0000"))
        d.wait_state("streaming", timeout=30)
        encoder = d.status()["encoder_pid"]
        tree = descendants(encoder)
        # Xvfb, chromedriver (children) and the Chromium browser (grandchild); renderers come and go
        core = children(encoder) | {g for c, _ in children(encoder) for g in children(c)}
        assert len(core) >= 3
        assert d.post("/stop").json()["stopped"] == first["session"]
        idle = wait_for(lambda: (s := d.status())["state"] == "idle" and s["standby"] == "warm" and s, 15,
                        message="idle with a warm standby")
        assert idle["encoder_pid"] == encoder and idle["session"] is None
        wait_for(lambda: not (d.runtime_dir / "sessions" / first["session"]).exists(), 5,
                 message="old session folder removed")
        assert httpx.get(first["stream_url"], timeout=5).status_code == 404
        second = start(d, pages.url("/color/0000ff"))
        assert second["session"] != first["session"]
        streaming = d.wait_state("streaming", timeout=30)
        assert streaming["encoder_pid"] == encoder and streaming["standby"] is None
        assert still_alive(core) == core  # the same Xvfb and Chromium serve the new session
        media = media_playlist_url(second["stream_url"])
        wait_for(lambda: newest_shows(media, BLUE), 10, message="blue in the new session")
        # another quality cannot use the parked child (screen size differs): a new child
        d.post("/stop")
        d.wait_state("idle")
        start(d, pages.url("/color/ff0000"), quality="1080p")
        s = d.wait_state("streaming", timeout=30)
        assert s["encoder_pid"] != encoder
        wait_for(lambda: not still_alive(tree), 5, message="the old child's tree gone")
    finally:
        d.record_descendants()
        assert d.stop() == 0
        assert not d.kill_leftovers()


def test_boot_standby_is_ready_before_the_first_start(tmp_path, pages):
    d = Daemon(runtime_dir=tmp_path / "run", env_extra={"CASTD_STANDBY": "boot"}).start()
    try:
        warm = wait_for(lambda: (s := d.status())["standby"] == "warm" and s, 20, message="boot standby")
        assert warm["state"] == "idle"
        start(d, pages.url("/color/ff0000"))
        s = d.wait_state("streaming", timeout=30)
        assert s["encoder_pid"] == warm["encoder_pid"]
        media = media_playlist_url(s["stream_url"])
        wait_for(lambda: newest_shows(media, RED), 10, message="red")
    finally:
        d.record_descendants()
        assert d.stop() == 0
        assert not d.kill_leftovers()
