"""The resume file and the supervisor's director (castd/supervisor/resume.py, director.py): written
atomically, read back into the same programme and session; a corrupt or foreign file is logged and
ignored. Files in a temporary folder, an injected clock; no daemon (test_programme_live.py has the
kill -9 of a real one)."""

import json
import os

import msgspec
from loguru import logger

from castd.config import Config
from castd.protocol import PageOverrides, Start
from castd.supervisor import resume
from castd.supervisor.director import Current, Director


def config(state_dir, **more) -> Config:
    return msgspec.convert({
        "state_dir": str(state_dir),
        "dashboards": [{"name": n, "url": f"http://127.0.0.1:9/{n}"} for n in ("red", "green", "cam")],
        "playlists": [{"name": "rg", "items": [{"dashboard": "red", "seconds": 10},
                                               {"dashboard": "green", "seconds": 10}]}], **more}, Config)


def start(**fields) -> Start:
    return Start(id="c", url=fields.pop("url", ""), quality="720p", **fields)


def current(session, show) -> Current:
    return Current(session=session, quality=show.quality, mode=show.mode, devices=show.devices, url=show.url,
                   page=show.page)


def test_a_playlist_is_one_session_of_switches_and_a_restart_resumes_it(tmp_path):
    director = Director(config(tmp_path), now=0)
    director.start(start(playlist="rg"), 0)
    first = director.follow(0, None)
    assert first.action == "new" and first.session is None and first.show.dashboard == "red"
    running = current("S1", first.show)
    assert director.follow(5, running).action == "keep"
    switch = director.follow(10, running)
    assert switch.action == "switch" and switch.show.dashboard == "green"
    director.keep("S1", 0.0, switch.show.session_key)
    saved = json.loads((tmp_path / "programme.json").read_text())
    assert saved["format"] == "castd-resume-1" and saved["session"] == "S1"
    assert not (tmp_path / "programme.json.tmp").exists()

    again = Director(config(tmp_path), now=13)  # the new process, 3 s after the old one's last word
    back = again.follow(13, None)
    assert (back.action, back.session, back.started_at, back.show.dashboard) == ("new", "S1", 0.0, "green")
    assert back.show.next_switch_at == 20  # the item goes on with the time it had left


def test_a_stop_is_kept_too(tmp_path):
    director = Director(config(tmp_path), now=0)
    director.start(start(url="http://127.0.0.1:9/x"), 0)
    director.keep("S1", 0.0, director.follow(0, None).show.session_key)
    director.stop(1)
    assert director.follow(1, None).action == "keep"  # nothing wanted, nothing running
    director.keep(None, None, None)
    assert Director(config(tmp_path), now=2).follow(2, None).action == "keep"


def test_writes_only_when_something_changed(tmp_path):
    director = Director(config(tmp_path), now=0)
    director.start(start(url="http://127.0.0.1:9/x"), 0)
    director.keep("S1", 0.0, None)
    before = os.stat(tmp_path / "programme.json").st_mtime_ns
    os.utime(tmp_path / "programme.json", ns=(1, 1))
    director.keep("S1", 0.0, None)  # same revision, same session: no write
    assert os.stat(tmp_path / "programme.json").st_mtime_ns == 1 != before


def test_an_interrupt_switches_back_to_the_same_page_without_a_new_session(tmp_path):
    director = Director(config(tmp_path), now=0)
    director.start(start(playlist="rg"), 0)
    show = director.follow(0, None).show
    director.start(start(url="http://127.0.0.1:9/cam", dashboard="cam", duration=30, then="resume"), 12)
    cam = director.follow(12, current("S", show), reload=True)
    assert cam.action == "switch" and cam.show.dashboard == "cam" and cam.show.source == "interrupt"
    back = director.follow(42, current("S", cam.show))
    assert back.action == "switch" and back.show.dashboard == "green" and back.show.next_switch_at == 50
    other = director.follow(42, Current(session="S", quality="1080p", mode="hls", devices=(), url="",
                                        page=PageOverrides()))
    assert other.action == "new"  # another quality: a new session


def test_corrupt_foreign_and_huge_files_are_ignored(tmp_path):
    cases = {"corrupt": b'{"type": "castd-resume-1", "session": ', "foreign": b'{"hello": "world"}',
             "binary": os.urandom(64), "huge": b" " * (resume.MAX_BYTES + 1)}
    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        for name, data in cases.items():
            (tmp_path / "programme.json").write_bytes(data)
            lines.clear()
            director = Director(config(tmp_path), now=0)
            assert director.follow(0, None).action == "keep", name  # nothing to show, nothing running
            assert any("resume state" in line and "ignored" in line for line in lines), (name, lines)
    finally:
        logger.remove(sink)
    assert resume.load(tmp_path / "nowhere") is None


def test_resume_off_or_no_state_dir_keeps_nothing(tmp_path):
    director = Director(config(tmp_path, resume=False), now=0)
    director.start(start(url="http://127.0.0.1:9/x"), 0)
    director.keep("S1", 0.0, None)
    assert not (tmp_path / "programme.json").exists()
    assert Director(msgspec.convert({}, Config)).folder is None or os.environ.get("STATE_DIRECTORY")
