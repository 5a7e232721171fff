"""Dashboards that look right: per-site secrets and styling, zoom, readiness, reloads, error cards,
and a picture that is exactly the viewport. Real daemon, real Chromium, frames decoded from HLS."""

import base64
import socket
import time

import pytest

from castd.encoder.errorcard import ACCENT, BACKGROUND
from helpers import (Daemon, PageHandler, close_to, fetch_segment, last_frame_of, luma, media_playlist_url,
                     rgb_at, save_png, segment_urls, wait_for)

GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
DEMO_BACKGROUND = (0x10, 0x14, 0x18)
SECRETS = {"cookie": "cookie-SECRET-7f3a", "storage": "storage-SECRET-91bc", "header": "header-SECRET-44d0",
           "password": "basic-SECRET-0e5d"}

SITES_TOML = """
[[sites]]
prefix = "{pages}/echo/"
cookies = {{ castd_session = "{cookie}" }}
local_storage = {{ "castd-test" = "{storage}" }}
headers = {{ X-Castd-Test = "{header}" }}
basic_auth = "viewer:{password}"
color_scheme = "dark"
css = "#banner, .shadow-banner {{ display: none !important; }}"

[[sites]]
prefix = "{pages}/later/"
ready_selector = "#ready"

[[sites]]
prefix = "{pages}/tall/"
ready_network_idle = true
scroll_y = 1000

[[sites]]
prefix = "{pages}/color/0a0b0c"
reload_seconds = 1.5

[[sites]]
prefix = "{pages}/color/0d0e0f"
ready_selector = "#never"
ready_timeout = 2
"""


@pytest.fixture(scope="module")
def sites_daemon(tmp_path_factory, pages):
    """A castd whose config has [[sites]] for the test pages."""
    folder = tmp_path_factory.mktemp("castd-sites")
    config = folder / "castd.toml"
    config.write_text(SITES_TOML.format(pages=pages.base, **SECRETS))
    config.chmod(0o600)  # it holds secrets: castd refuses a config file others can read
    d = Daemon(runtime_dir=folder / "run", args=["--config", str(config)]).start()
    yield d
    d.finish()


@pytest.fixture
def sd(sites_daemon):
    """The sites daemon, idle before the test (each test starts a fresh session)."""
    sites_daemon.post("/stop")
    sites_daemon.wait_state("idle")
    return sites_daemon


def start(daemon, url, **extra):
    response = daemon.post("/start", json={"url": url, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def newest_frame(stream_url):
    urls = wait_for(lambda: segment_urls(media_playlist_url(stream_url)), 20, message="segments")
    return last_frame_of(fetch_segment(urls[-1]))


def wait_frame(stream_url, predicate, timeout=30, message="frame"):
    """Poll the newest segment until its last frame satisfies `predicate`; return that frame."""
    return wait_for(lambda: (f := newest_frame(stream_url)) is not None and predicate(f) and f, timeout,
                    interval=0.3, message=message)


def white_run(frame, y, x_end=900):
    """How many pixels of row `y` (from the left) are white: the rendered width of a white shape."""
    at = luma(frame)
    return sum(1 for x in range(x_end) if at(x, y) > 128)


def is_card(frame):
    w, h = frame.width, frame.height
    return close_to(rgb_at(frame, w // 2, 4), ACCENT, 40) and close_to(rgb_at(frame, w // 2, h - 8), BACKGROUND, 20)


def test_site_secrets_and_styles_arrive_before_the_page_scripts(sd, pages):
    body = start(sd, pages.url("/echo/k1"))
    sd.wait_state("streaming", timeout=30)
    report = wait_for(lambda: PageHandler.reports.get("k1"), 10, message="page report")
    # what the page's own first script saw in the DOM
    assert report["storage"] == SECRETS["storage"]
    assert f"castd_session={SECRETS['cookie']}" in report["cookie"]
    assert report["dark"] is True and report["banner"] == "none" and report["shadow"] == "none"
    # what reached the server with the document request
    headers = PageHandler.requests["/echo/k1"][0]
    assert headers["X-Castd-Test"] == SECRETS["header"]
    assert headers["Cookie"] == f"castd_session={SECRETS['cookie']}"
    expected_auth = "Basic " + base64.b64encode(f"viewer:{SECRETS['password']}".encode()).decode()
    assert headers["Authorization"] == expected_auth
    # the injected CSS hid both red banners: the picture is the green page underneath
    frame = wait_frame(body["stream_url"], lambda f: close_to(rgb_at(f, 640, 360), GREEN), message="green")
    assert close_to(rgb_at(frame, 10, 10), GREEN) and close_to(rgb_at(frame, 320, 180), GREEN)
    # secrets: never in a log line, /status, or the browser logs castd keeps
    status_text = sd.get("/status").text
    logs_folder = sd.runtime_dir / "sessions" / (body["session"] + ".logs")
    kept = "".join(p.read_text(errors="replace") for p in logs_folder.glob("*") if p.is_file())
    for name, secret in SECRETS.items():
        assert secret not in sd.log(), name
        assert secret not in status_text, name
        assert secret not in kept, name
    assert expected_auth.split()[1] not in sd.log()


def test_ready_selector_holds_back_the_first_segment(sd, pages):
    """/later/3 is red for 3 s, then grows #ready and turns green; streaming must wait for it."""
    path = "/later/3"
    hits_before = PageHandler.hits.get(path, 0)
    body = start(sd, pages.url(path))
    states = []  # (time the answer arrived, state)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        state = sd.status()["state"]
        states.append((time.monotonic(), state))
        if states[-1][1] == "streaming":
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"never streaming: {sd.status()}")
    assert PageHandler.hits[path] == hits_before + 1
    served_at = PageHandler.hit_times[path][-1]  # taken by the test server itself
    # the element appears 3 s after the page's script ran, later than the server answered; an answer
    # saying "streaming" arrives after streaming began, so never sooner than 3 s after the page was served
    assert states[-1][0] - served_at >= 3.0, (states[-1][0] - served_at)
    assert all(state == "starting" for _, state in states[:-1])
    wait_frame(body["stream_url"], lambda f: close_to(rgb_at(f, 640, 360), GREEN), timeout=5, message="green")
    assert sd.status()["page"] == "loaded"


def test_network_idle_waits_for_the_fetch_then_scrolls(sd, pages):
    """/tall/2 grows its green part only when a 2 s fetch answers; scrolled to 1000 px, the frame is green
    only if castd waited for the network to go idle before scrolling and showing the page."""
    body = start(sd, pages.url("/tall/2"))
    sd.wait_state("streaming", timeout=30)
    # (without waiting, the scroll would come before the green part exists and stop at the red block)
    frame = wait_frame(body["stream_url"], lambda f: close_to(rgb_at(f, 640, 360), GREEN), timeout=5,
                       message="the green part, scrolled into view")
    for x, y in ((640, 10), (640, 360), (1275, 710)):
        assert close_to(rgb_at(frame, x, y), GREEN), (x, y, rgb_at(frame, x, y))


def test_zoom_override_changes_the_rendered_size(sd, pages):
    body = start(sd, pages.url("/square"))
    sd.wait_state("streaming", timeout=30)
    plain = wait_frame(body["stream_url"], lambda f: white_run(f, 50) > 0 and white_run(f, 300) == 0,
                       message="square")
    assert 96 <= white_run(plain, 50) <= 104 and white_run(plain, 150) == 0
    zoomed_body = start(sd, pages.url("/square?zoomed"), zoom=2)
    assert zoomed_body["switched"] is True
    zoomed = wait_frame(body["stream_url"], lambda f: white_run(f, 50) > 150, message="zoomed square")
    assert 192 <= white_run(zoomed, 50) <= 208 and white_run(zoomed, 150) > 150 and white_run(zoomed, 210) == 0
    save_png(zoomed, "zoom-2x-720p")


def test_zoom_scales_a_page_laid_out_in_viewport_units_to_fill_the_frame(sd, pages):
    """zoom = 1.5 on a page of two 50vh halves: the halves still split the frame in two (CSS zoom scaled
    vh too: the green half grew to 75% and pushed the blue one off the bottom), and CSS pixels are 1.5
    device pixels (the 100 px square is 150 px)."""
    body = start(sd, pages.url("/vh"), zoom=1.5)
    sd.wait_state("streaming", timeout=30)
    frame = wait_frame(body["stream_url"], lambda f: close_to(rgb_at(f, 640, 700), BLUE), message="the blue half")
    save_png(frame, "zoom-1.5-vh-720p")
    for x, y in ((640, 200), (1275, 350), (640, 355)):
        assert close_to(rgb_at(frame, x, y), GREEN), (x, y, rgb_at(frame, x, y))
    for x, y in ((640, 365), (1275, 600), (640, 715)):
        assert close_to(rgb_at(frame, x, y), BLUE), (x, y, rgb_at(frame, x, y))
    at = luma(frame)  # white ~235, this green ~150-175: a higher threshold than white_run's
    square = [sum(1 for x in range(400) if at(x, y) > 210) for y in (50, 140, 160)]
    assert 144 <= square[0] <= 156 and square[1] == square[0] and square[2] == 0, square


def test_reloads_happen_on_schedule_without_restarting_the_encoder(sd, pages):
    site_path = "/color/0a0b0c"  # its [[sites]] entry reloads every 1.5 s
    start(sd, pages.url(site_path))
    first = sd.wait_state("streaming", timeout=30)
    hits = PageHandler.hits.get(site_path, 0)
    wait_for(lambda: PageHandler.hits.get(site_path, 0) >= hits + 3, 30, message="three site reloads")
    # a per-request interval works the same way, on a page with no site
    request_path = "/color/0a0b0d"
    start(sd, pages.url(request_path), reload_seconds=1)
    wait_for(lambda: PageHandler.hits.get(request_path, 0) >= 2, 30, message="the switch and a request reload")
    site_hits = PageHandler.hits[site_path]  # the switch is past: from here on the site's page is not shown
    wait_for(lambda: PageHandler.hits.get(request_path, 0) >= 4, 30, message="request reloads")
    status = sd.status()
    assert status["encoder_pid"] == first["encoder_pid"] and status["session"] == first["session"]
    assert status["restarts"] == 0 and status["state"] == "streaming"
    # the site's page is no longer shown, so it was not reloaded in the two seconds of request reloads
    assert PageHandler.hits[site_path] == site_hits


def test_error_card_for_a_500_page_then_the_page_when_it_recovers(sd, pages):
    path = "/flaky/k500/3"  # 500 for three hits, then a green page
    body = start(sd, pages.url(path))
    status = wait_for(lambda: (s := sd.status())["state"] == "streaming" and s["page"] == "error" and s, 30,
                      message="streaming the error card")
    assert "HTTP 500" in status["last_error"]
    card = wait_frame(body["stream_url"], is_card, message="error card")
    save_png(card, "error-card-http-500-720p")
    # it keeps trying with backoff (1 s, 2 s, 4 s) and shows the page once it answers
    wait_frame(body["stream_url"], lambda f: close_to(rgb_at(f, 640, 360), GREEN), timeout=40,
               message="recovered page")
    assert PageHandler.hits[path] == 4
    assert sd.status()["page"] == "loaded"
    assert "page failed; showing the error card" in sd.log() and "HTTP 500" in sd.log()


def test_error_card_for_an_unreachable_host(sd):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    body = start(sd, f"http://127.0.0.1:{port}/dashboard")
    status = wait_for(lambda: (s := sd.status())["state"] == "streaming" and s["page"] == "error" and s, 30,
                      message="streaming the error card")
    assert "ERR_CONNECTION_REFUSED" in status["last_error"]
    card = wait_frame(body["stream_url"], is_card, message="error card")
    save_png(card, "error-card-unreachable-720p")


def test_error_card_when_the_page_never_becomes_ready(sd, pages):
    body = start(sd, pages.url("/color/0d0e0f"))  # its site waits 2 s for #never
    status = wait_for(lambda: (s := sd.status())["state"] == "streaming" and s["page"] == "error" and s, 30,
                      message="streaming the error card")
    assert "not ready after 2s" in status["last_error"] and "#never" in status["last_error"]
    wait_frame(body["stream_url"], is_card, message="error card")


@pytest.mark.parametrize("quality, size", [("720p", (1280, 720)), ("1080p", (1920, 1080))])
def test_picture_is_exactly_the_viewport_and_demo_artifacts(sd, pages, quality, size):
    """A 1 px frame drawn at the viewport's edges lands on the decoded frame's edge pixels."""
    width, height = size
    body = start(sd, pages.url("/border"), quality=quality)
    sd.wait_state("streaming", timeout=30)
    frame = wait_frame(body["stream_url"], lambda f: luma(f)(width // 2, 0) > 128 and
                       luma(f)(width // 2, height // 2) < 64, message="border")
    assert (frame.width, frame.height) == size
    at = luma(frame)
    for x in (0, 7, width // 3, width // 2, width - 8, width - 1):
        assert at(x, 0) > 128 and at(x, height - 1) > 128, (x, at(x, 0), at(x, height - 1))
    for y in (0, 7, height // 3, height // 2, height - 8, height - 1):
        assert at(0, y) > 128 and at(width - 1, y) > 128, (y, at(0, y), at(width - 1, y))
    # and only there: three pixels in, the page's black (no scrollbar, no UI, no cursor)
    for x in (7, width // 3, width // 2, width - 8):
        assert at(x, 3) < 64 and at(x, height - 4) < 64, (x, at(x, 3), at(x, height - 4))
    for y in (7, height // 3, height // 2, height - 8):
        assert at(3, y) < 64 and at(width - 4, y) < 64, (y, at(3, y), at(width - 4, y))
    save_png(frame, f"border-{quality}")
    # the embedded demo, as a TV would show it: its dark background and its coloured band on top
    start(sd, sd.base + "/demo", quality=quality)
    time.sleep(2)  # let the chart draw a few points

    def is_demo(f):
        band = rgb_at(f, width // 4, height // 50)
        return close_to(rgb_at(f, 5, height - 5), DEMO_BACKGROUND, 16) and max(band) - min(band) > 60

    save_png(wait_frame(body["stream_url"], is_demo, message="demo"), f"demo-{quality}")
