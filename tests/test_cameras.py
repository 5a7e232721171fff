"""Cameras as sources: a real RTSP camera (GStreamer's RTSP server, tests/rtspserver.py, with a login)
read by the real daemon, full screen as an interrupt over a dashboard and picture-in-picture over it;
what castd serves is decoded and the camera's colour found where it should be. One daemon and one
camera for the module (a Chromium start and a GStreamer start: the slow parts)."""

from __future__ import annotations

import time

import pytest

from helpers import (Daemon, RtspCamera, centre_rgb, close_to, newest_frame, rgb_at, wait_for)

CAMERA = (0, 255, 0)
PAGE = (0, 0, 255)


@pytest.fixture(scope="module")
def camera():
    with RtspCamera(color="%02x%02x%02x" % CAMERA) as cam:
        yield cam


@pytest.fixture(scope="module")
def cam_daemon(tmp_path_factory, pages, camera):
    folder = tmp_path_factory.mktemp("castd-cameras")
    config = folder / "castd.toml"
    config.write_text(
        f'[[dashboards]]\nname = "page"\nurl = "{pages.url("/color/%02x%02x%02x" % PAGE)}"\n\n'
        f'[cameras.door]\nurl = "{camera.url}"\nusername = "{camera.user}"\npassword = "{camera.password}"\n\n'
        f'[cameras.wrong]\nurl = "{camera.url}"\nusername = "{camera.user}"\npassword = "not-the-password"\n')
    config.chmod(0o600)  # it holds secrets
    d = Daemon(runtime_dir=folder / "run", args=["--config", str(config)]).start()
    yield d
    d.finish()
    assert camera.password not in d.log()


def stream_url(d: Daemon) -> str:
    return d.base + d.status()["stream_path"]


def wait_colour(d: Daemon, rgb, timeout: float = 20, where=centre_rgb):
    """Wait until the newest segment's last frame has `rgb` at `where`; returns that frame."""
    url = stream_url(d)

    def found():
        frame = newest_frame(url)
        return frame is not None and close_to(where(frame), rgb, 40) and frame
    return wait_for(found, timeout, interval=0.3, message=f"colour {rgb} in the stream")


def camera_state(d: Daemon, name: str) -> dict | None:
    return next((c for c in d.status().get("cameras", []) if c["name"] == name), None)


def test_a_camera_interrupts_a_dashboard_in_the_same_session_and_the_dashboard_comes_back(cam_daemon):
    d = cam_daemon
    started = d.post("/start", json={"dashboard": "page"})
    assert started.status_code == 200, started.text
    session = started.json()["session"]
    d.wait_state("streaming")
    wait_colour(d, PAGE)

    asked = time.monotonic()
    interrupt = d.post("/start", json={"camera": "door", "duration": 6, "then": "resume"})
    assert interrupt.status_code == 200, interrupt.text
    body = interrupt.json()
    assert body["session"] == session and body["switched"] is True  # same session: no new LOAD, same URL
    assert body["camera"] == "door"
    wait_colour(d, CAMERA)
    seconds = time.monotonic() - asked
    state = camera_state(d, "door")
    assert state is not None and state["state"] == "live" and state["codec"] == "h264", state
    assert d.status()["url"] == "camera:door"
    print(f"camera at the stream's live edge {seconds:.2f} s after the webhook")

    wait_colour(d, PAGE, timeout=20)  # the interrupt ends: the dashboard is back, same session
    assert d.status()["session"] == session
    wait_for(lambda: camera_state(d, "door") is None, 5, message="the camera closed after the interrupt")


def test_a_camera_that_refuses_the_login_is_reported_and_marked_offline_and_the_daemon_stays_healthy(cam_daemon):
    d = cam_daemon
    d.post("/start", json={"dashboard": "page"})
    d.wait_state("streaming")
    response = d.post("/start", json={"camera": "wrong", "duration": 30, "then": "resume"})
    assert response.status_code == 200, response.text
    state = wait_for(lambda: (s := camera_state(d, "wrong")) and s["failures"] >= 1 and s, 15,
                     message="the login failure in /status")
    assert state["state"] == "offline" and "login refused" in state["error"], state
    status = d.status()
    assert "login refused" in (status["last_error"] or "") and status["page"] == "error"
    assert d.get("/health").status_code == 200
    assert "not-the-password" not in d.log()
    d.post("/stop")


def camera_area(frame) -> tuple[int, int, int]:
    """Where a 4:3 camera sits letterboxed in the 16:9 picture: x, y, width."""
    width = frame.height * 4 // 3
    return (frame.width - width) // 2, 0, width


def mark_pixel(frame) -> tuple[int, int, int]:
    """A pixel inside the offline mark's black box (castd/encoder/compose.py: top-left of the camera)."""
    x, y, width = camera_area(frame)
    inset = width * 2 // 100
    return rgb_at(frame, x + inset + 3, y + inset + 3)


def test_a_camera_killed_mid_stream_holds_its_last_picture_marked_offline_and_comes_back(cam_daemon, camera):
    d = cam_daemon
    d.post("/start", json={"dashboard": "page"})
    d.wait_state("streaming")
    session = d.status()["session"]
    assert d.post("/start", json={"camera": "door", "duration": 120, "then": "resume"}).status_code == 200
    frame = wait_colour(d, CAMERA)
    assert close_to(mark_pixel(frame), CAMERA, 40)  # live: no mark
    camera.kill()
    try:
        state = wait_for(lambda: (s := camera_state(d, "door")) and s["state"] == "offline" and s, 15,
                         message="the camera reported offline")
        assert state["error"] and state["failures"] >= 1, state
        frame = wait_colour(d, (0, 0, 0), where=mark_pixel)  # the offline mark over the held picture
        assert close_to(centre_rgb(frame), CAMERA, 40)  # the last picture stays up
        assert d.get("/health").status_code == 200 and d.status()["session"] == session
    finally:
        camera.start()  # the same port: the camera is back
    wait_for(lambda: (s := camera_state(d, "door")) and s["state"] == "live", 30, message="the camera back live")
    frame = wait_colour(d, CAMERA, where=mark_pixel)  # the mark is gone
    assert close_to(centre_rgb(frame), CAMERA, 40)
    assert d.status()["session"] == session
    d.post("/stop")


def test_a_camera_that_never_answers_times_out_and_is_retried_with_backoff():
    import socket

    from castd.config import Camera
    from castd.encoder.camera import CameraReader
    with socket.socket() as silent:  # accepts the connection (the kernel does), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        reader = CameraReader("mute", Camera(url=f"rtsp://127.0.0.1:{silent.getsockname()[1]}/cam")).start()
        try:
            wait_for(lambda: reader.failures >= 1, 15, message="the first attempt timed out")
            status = reader.status()
            assert status.state == "offline" and "no answer" in (status.error or ""), status
            assert status.retry_in is not None and 0 < status.retry_in <= 1.0
            assert reader.frame is None
        finally:
            reader.stop()


def overlay_pixel(frame) -> tuple[int, int, int]:
    """The middle of a 4:3 camera in the top-right overlay box (half the picture's width and height,
    2.5% margin: castd/encoder/compose.py), above the camera's time strip."""
    box_h = frame.height // 2
    width = box_h * 4 // 3
    margin = frame.width * 25 // 1000
    return rgb_at(frame, frame.width - margin - width // 2, margin + box_h // 3)


def test_a_camera_overlay_sits_in_a_corner_over_the_running_page_and_goes_away(cam_daemon):
    d = cam_daemon
    d.post("/start", json={"dashboard": "page"})
    d.wait_state("streaming")
    session = d.status()["session"]
    asked = time.monotonic()
    response = d.post("/start", json={"camera": "door", "overlay": "top-right", "duration": 6})
    assert response.status_code == 200, response.text
    assert response.json()["session"] == session and response.json()["overlay"] == "top-right"
    frame = wait_colour(d, CAMERA, where=overlay_pixel)
    print(f"overlay at the stream's live edge {time.monotonic() - asked:.2f} s after the webhook")
    assert close_to(centre_rgb(frame), PAGE, 40)  # the page around it
    assert close_to(rgb_at(frame, frame.width // 10, frame.height * 9 // 10), PAGE, 40)
    assert close_to(rgb_at(frame, frame.width * 9 // 10, frame.height * 9 // 10), PAGE, 40)
    status = d.status()
    assert [o["camera"] for o in status["overlays"]] == ["door"] and status["url"] != "camera:door"
    assert camera_state(d, "door")["shown"] == "overlay"
    wait_colour(d, PAGE, where=overlay_pixel, timeout=20)  # its duration is over: the page again
    assert d.status()["overlays"] == [] and d.status()["session"] == session
    d.post("/stop")


def test_an_overlay_needs_a_running_session_and_a_known_camera(cam_daemon):
    d = cam_daemon
    d.post("/stop")
    d.wait_state("idle")
    response = d.post("/start", json={"camera": "door", "overlay": "top-left", "duration": 5})
    assert response.status_code == 409 and "running session" in response.json()["error"]
    response = d.post("/start", json={"camera": "nope", "overlay": "top-left"})
    assert response.status_code == 404 and "door" in response.json()["error"]
    response = d.post("/start", json={"dashboard": "page", "overlay": "top-left"})
    assert response.status_code == 400
    assert d.status()["state"] == "idle"
