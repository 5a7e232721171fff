"""The allowlist inside the real browser: a page on the list cannot redirect or script Chromium off it.
Also, with a live session: symlinks in the session folder are not served, and the stream ends with it."""

import os
import secrets
import uuid
from urllib.parse import quote

import jsonschema
import pytest
from helpers import (Daemon, PageHandler, close_to, fetch_segment, last_frame_of, media_playlist_url, rgb_at,
                     segment_urls, wait_for)

TOKEN = secrets.token_urlsafe(24)
GREY = (64, 64, 64)  # the /nav/script page's background


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, pages):
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("guarded") / "run", token=TOKEN,
               env_extra={"CASTD_ALLOWLIST": f"{pages.url('/color/')} {pages.url('/nav/')}"}).start()
    yield d
    d.finish()


def _start(daemon, url):
    response = daemon.post("/start", json={"url": url, "quality": "720p"})
    assert response.status_code == 200, response.text
    return response.json()


def _centre(stream_url):
    urls = segment_urls(media_playlist_url(stream_url))
    if not urls:
        return None
    frame = last_frame_of(fetch_segment(urls[-1]))
    return rgb_at(frame, 640, 360) if frame is not None else None


def test_browser_stays_on_the_allowlist(guarded, pages):
    offlist = pages.url("/offlist/")
    tag = uuid.uuid4().hex[:8]

    # 1. an HTTP redirect from an allowed page to one off the list: blocked before any request is sent
    start = _start(guarded, pages.url(f"/nav/redirect?to={quote(offlist + 'redirect-' + tag)}"))
    openapi = guarded.get("/openapi.json").json()
    jsonschema.Draft202012Validator({"$ref": "#/components/schemas/StartResponse",
                                     "components": openapi["components"]}).validate(start)
    status = wait_for(lambda: (s := guarded.status())["page"] == "error" and s, 60, message="the blocked redirect")
    assert "allowlist" in status["last_error"], status
    assert PageHandler.hits.get("/nav/redirect", 0) >= 1
    assert f"/offlist/redirect-{tag}" not in PageHandler.hits

    # 2. control: a script navigation to another allowed page goes through (the guard is not a wall)
    allowed_target = f"/color/00ff00/control-{tag}"
    _start(guarded, pages.url(f"/nav/script/a{tag}?to={quote(pages.url(allowed_target))}"))
    wait_for(lambda: PageHandler.hits.get(allowed_target), 60, message="the allowed script navigation")

    # 3. a script navigation off the list: the script runs (it pings), the picture leaves the grey page
    #    (Chromium shows its blocked page instead), and the off-list server never sees a request
    switched = _start(guarded, pages.url(f"/nav/script/b{tag}?to={quote(offlist + 'script-' + tag)}"))
    assert switched["switched"] is True
    wait_for(lambda: PageHandler.hits.get(f"/nav/ping/b{tag}"), 60, message="the script's ping")
    stream_url = switched["stream_url"]
    wait_for(lambda: (c := _centre(stream_url)) is not None and not close_to(c, GREY) and not close_to(c, (0, 255, 0)),
             60, interval=0.5, message="the picture to leave the script page")
    assert f"/offlist/script-{tag}" not in PageHandler.hits

    # 4. only plain files of the live session are served: no symlinks (to elsewhere, or to its own files)
    session = switched["session"]
    assert len(session) >= 22  # 16 random bytes, URL-safe base64: 128 bits
    folder = guarded.runtime_dir / "sessions" / session
    os.symlink("/etc/passwd", folder / "evil.m3u8")
    os.symlink(folder / "index.m3u8", folder / "alias.m3u8")
    assert guarded.get(f"/stream/{session}/index.m3u8", headers={}).status_code == 200
    for name in ("evil.m3u8", "alias.m3u8"):
        response = guarded.get(f"/stream/{session}/{name}", headers={})
        assert response.status_code == 404 and "root:" not in response.text

    # 5. the stream ends with the session
    assert guarded.post("/stop").json()["stopped"] == session
    guarded.wait_state("idle")
    assert guarded.get(f"/stream/{session}/index.m3u8", headers={}).status_code == 404
    log = guarded.log()
    assert "navigation off the allowlist was blocked" in log
    assert TOKEN not in log
