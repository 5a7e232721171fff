"""The preview page at / in real headless Chromium, and /snapshot.jpg decoded with PyAV."""

import io
import os
import subprocess
import sys

import av
import httpx
from selenium.webdriver.common.by import By

from headless import headless_chromium
from helpers import ROOT, Daemon, close_to, rgb_at, wait_for

ARTIFACTS = ROOT / "artifacts"

# A small fingerprint of the picture the page shows: drawn into a canvas and hashed in the page.
PICTURE_HASH = """
const img = document.getElementById('picture');
if (!img || !img.complete || !img.naturalWidth || img.clientWidth < 320) return null;  // shown, and big
const c = document.createElement('canvas'); c.width = 320; c.height = 180;
const g = c.getContext('2d'); g.drawImage(img, 0, 0, 320, 180);
const d = g.getImageData(0, 0, 320, 180).data; let h = 0;
for (let i = 0; i < d.length; i++) h = (Math.imul(h, 31) + d[i]) >>> 0;
return [img.naturalWidth, img.naturalHeight, h];
"""


def decode_jpeg(data: bytes):
    with av.open(io.BytesIO(data), format="image2pipe") as container:
        return next(container.decode(video=0))


def test_snapshot_is_the_current_picture_and_404_when_idle(idle_daemon, pages):
    d = idle_daemon
    idle = d.get("/snapshot.jpg")
    assert idle.status_code == 404 and idle.json()["status"] == 404
    d.post("/start", json={"url": pages.url("/color/ff8000")})
    d.wait_state("streaming")
    response = wait_for(lambda: (r := d.get("/snapshot.jpg")).status_code == 200 and r, 10, message="snapshot")
    assert response.headers["content-type"] == "image/jpeg" and "no-store" in response.headers["cache-control"]
    # the picture is refreshed once a second, so the first one may still show the blank page before paint
    frame = wait_for(lambda: close_to(rgb_at(f := decode_jpeg(d.get("/snapshot.jpg").content), 640, 360),
                                      (255, 128, 0)) and f, 10, interval=0.3, message="orange snapshot")
    assert (frame.width, frame.height) == (1280, 720)
    for x, y in ((640, 360), (10, 10), (1270, 710)):
        assert close_to(rgb_at(frame, x, y), (255, 128, 0)), rgb_at(frame, x, y)
    # it follows the page: switch to blue, the snapshot turns blue within a few seconds
    d.post("/start", json={"url": pages.url("/color/0000ff")})
    wait_for(lambda: close_to(rgb_at(decode_jpeg(d.get("/snapshot.jpg").content), 640, 360), (0, 0, 255)), 10,
             interval=0.3, message="blue snapshot")
    d.post("/stop")
    d.wait_state("idle")
    assert d.get("/snapshot.jpg").status_code == 404


def test_preview_page_shows_the_live_picture_and_stops(idle_daemon):
    d = idle_daemon
    start = d.post("/start", json={"url": f"{d.base}/demo", "duration": 600})
    assert start.status_code == 200
    d.wait_state("streaming")
    ARTIFACTS.mkdir(exist_ok=True)
    with headless_chromium() as browser:
        browser.get(d.base + "/")
        text = lambda element_id: browser.find_element(By.ID, element_id).text  # noqa: E731
        wait_for(lambda: text("state") == "streaming", 15, message="page shows streaming")
        first = wait_for(lambda: browser.execute_script(PICTURE_HASH), 15, message="a picture")
        assert first[:2] == [1280, 720]
        assert browser.find_element(By.ID, "picture").is_displayed()
        # the demo's clock ticks, so a refreshed picture differs
        wait_for(lambda: (now := browser.execute_script(PICTURE_HASH)) and now[2] != first[2], 15,
                 interval=0.3, message="the picture changes")
        wait_for(lambda: text("uptime") not in ("-", "0s"), 10, message="uptime")
        assert text("url") == f"{d.base}/demo"
        assert text("device") == "none set"
        assert float(text("fps")) > 0
        assert text("restarts") == "0"
        assert text("stream").endswith("/index.m3u8")
        browser.save_screenshot(str(ARTIFACTS / "preview-streaming.png"))
        stop = browser.find_element(By.ID, "stop")
        assert stop.is_enabled()
        stop.click()
        wait_for(lambda: text("state") == "idle", 15, message="page shows idle")
        assert not browser.find_element(By.ID, "picture").is_displayed()
        assert not browser.find_element(By.ID, "stop").is_enabled()
        browser.save_screenshot(str(ARTIFACTS / "preview-idle.png"))
    assert d.status()["state"] == "idle"
    assert (ARTIFACTS / "preview-streaming.png").stat().st_size > 10_000


def test_preview_page_is_served_without_caching(idle_daemon):
    response = idle_daemon.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert 'id="picture"' in response.text and 'id="stop"' in response.text
    assert httpx.get(idle_daemon.base + "/", timeout=5).headers["cache-control"] == "no-cache"


def test_with_a_token_the_page_asks_for_it_and_the_picture_needs_it(tmp_path, pages):
    """Without the token (or with a wrong one) the page says what it cannot know instead of guessing;
    with it, it shows what is on screen and drives the programme: a dashboard or playlist to start,
    next and previous, and the page's own error."""
    token = "preview-token-0123456789"
    config = tmp_path / "castd.toml"
    config.write_text(f'''
[[dashboards]]
name = "teal"
url = "{pages.url('/color/008080')}"
[[dashboards]]
name = "gone"
url = "{pages.url('/status/404')}"
[[playlists]]
name = "two"
items = [{{dashboard = "teal", seconds = 600}}, {{dashboard = "gone", seconds = 600}}]
''')
    d = Daemon(runtime_dir=tmp_path / "run", token=token, env_extra={"CASTD_CONFIG": str(config)}).start()
    try:
        assert httpx.get(d.base + "/", timeout=5).status_code == 200  # the HTML holds nothing secret
        assert httpx.get(d.base + "/snapshot.jpg", timeout=5).status_code == 401
        assert d.get("/snapshot.jpg").status_code == 404  # with the token: idle, so no picture
        assert httpx.get(d.base + f"/snapshot.jpg?token={token}", timeout=5).status_code == 404
        with headless_chromium() as browser:
            text = lambda element_id: browser.find_element(By.ID, element_id).text  # noqa: E731
            enabled = lambda element_id: browser.find_element(By.ID, element_id).is_enabled()  # noqa: E731
            browser.get(d.base + "/")
            wait_for(lambda: "has a token" in text("note"), 15, message="the page asks for the token")
            assert text("state") == "idle" and text("restarts") == "-"
            # with the token: start the playlist from the page
            browser.get(d.base + f"/#token={token}")
            browser.refresh()
            wait_for(lambda: text("restarts") == "0", 15, message="details with the token")
            assert text("note") == ""
            wait_for(lambda: browser.find_element(By.ID, "play").is_displayed(), 10, message="the starter")
            options = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#dashboard option")]
            assert options == ["playlist two", "dashboard teal", "dashboard gone"], options
            assert not enabled("next") and not enabled("previous")  # nothing on: nothing to step
            browser.find_element(By.ID, "play").click()
            wait_for(lambda: text("state") == "streaming", 30, message="the playlist streams")
            wait_for(lambda: text("showing").startswith("playlist two item 1/2 (teal), next in"), 10,
                     message="what is on screen")
            assert enabled("next") and enabled("previous") and enabled("stop")
            # next: the second item's page answers 404; the page shows its error over the picture
            browser.find_element(By.ID, "next").click()
            wait_for(lambda: text("showing").startswith("playlist two item 2/2 (gone)"), 10, message="item 2")
            wait_for(lambda: "The page did not load" in text("pageerror"), 20, message="the page's error")
            assert text("page") == "error"
            ARTIFACTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(ARTIFACTS / "preview-page-error.png"))
            # without the token, while it streams: nothing it cannot know, nothing it may not do
            browser.get(d.base + "/#")
            browser.refresh()
            wait_for(lambda: "has a token" in text("note"), 15, message="the page asks for the token")
            assert text("state") == "streaming"
            for element in ("device", "url", "showing", "restarts", "stream"):
                assert text(element) == "-", (element, text(element))
            assert "the picture needs the token" in text("placeholder")
            assert not enabled("stop") and not enabled("next")
            assert not browser.find_element(By.ID, "play").is_displayed()
            browser.save_screenshot(str(ARTIFACTS / "preview-no-token.png"))
            # a wrong token is told apart from none
            browser.get(d.base + "/#token=not-the-token-at-all")
            browser.refresh()
            wait_for(lambda: "refused the token" in text("note"), 15, message="the wrong token named")
            assert not enabled("stop")
        assert d.status()["state"] == "streaming"  # nothing the tokenless page did changed anything
        status = subprocess.run([sys.executable, "-m", "castd", "status"], capture_output=True, text=True,
                                timeout=30, cwd=ROOT, env={**os.environ, "CASTD_PORT": str(d.port),
                                                           "CASTD_TOKEN": "", "CASTD_CONFIG": str(config)})
        assert status.returncode == 0 and "castd has a token" in status.stdout
    finally:
        d.stop()
        assert not d.kill_leftovers()
    assert token not in d.log()
    assert "/favicon.ico" not in d.log()  # the page names no icon a browser would fetch (and be refused)
