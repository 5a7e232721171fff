"""Cameras as sources: a real RTSP camera (GStreamer's RTSP server, tests/rtspserver.py, with a login)
read by the real daemon, full screen as an interrupt over a dashboard and picture-in-picture over it;
what castd serves is decoded and the camera's colour found where it should be. One daemon and one
camera for the module (a Chromium start and a GStreamer start: the slow parts)."""

from __future__ import annotations

import array
import json
import os
import statistics
import re
import socket
import subprocess
import sys
import time

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from broker import mqtt_env
from fakecast import FakeCastDevice
from hadiscovery import check
from helpers import (ROOT, Daemon, HlsCamera, MjpegCamera, RtspCamera, centre_rgb, close_to, fetch_segment,
                     media_playlist_url, newest_frame, open_segment, rgb_at, segment_urls, wait_for)
from rtspserver import TIME_STEPS, TONE_BASE, TONE_STEP

from castd.presets import STREAM_FORMATS

CAMERA = (0, 255, 0)
PAGE = (0, 0, 255)
MJPEG = (255, 0, 255)
HLS = (255, 255, 0)
NODE = "door_tv"
BASE = f"castd/{NODE}"


@pytest.fixture(scope="module")
def camera():
    with RtspCamera(color="%02x%02x%02x" % CAMERA) as cam:
        yield cam


@pytest.fixture(scope="module")
def mjpeg():
    cam = MjpegCamera(color="%02x%02x%02x" % MJPEG)
    yield cam
    cam.close()


@pytest.fixture(scope="module")
def hls(tmp_path_factory):
    cam = HlsCamera(tmp_path_factory.mktemp("hls-camera"), color="%02x%02x%02x" % HLS)
    yield cam
    cam.close()


@pytest.fixture(scope="module")
def mute():
    """A loopback port that accepts connections and never says a word (a camera hung mid-boot)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield silent.getsockname()[1]


@pytest.fixture(scope="module")
def cam_daemon(tmp_path_factory, pages, camera, mjpeg, hls, mute, broker, ha):
    folder = tmp_path_factory.mktemp("castd-cameras")
    config = folder / "castd.toml"
    config.write_text(
        f'[[dashboards]]\nname = "page"\nurl = "{pages.url("/color/%02x%02x%02x" % PAGE)}"\n\n'
        f'[cameras.door]\nurl = "{camera.url}"\nusername = "{camera.user}"\npassword = "{camera.password}"\n\n'
        f'[cameras.wrong]\nurl = "{camera.url}"\nusername = "{camera.user}"\npassword = "not-the-password"\n\n'
        f'[cameras.inline]\nurl = "rtsp://{camera.user}:{camera.password}@127.0.0.1:{camera.port}/cam"\n\n'
        f'[cameras.mjpeg]\nurl = "{mjpeg.url}"\nusername = "{mjpeg.user}"\npassword = "{mjpeg.password}"\n\n'
        f'[cameras.snap]\nurl = "rtsp://127.0.0.1:{mute}/cam"\nusername = "{mjpeg.user}"\n'
        f'password = "{mjpeg.password}"\nsnapshot_url = "{mjpeg.snapshot_url}"\n\n'
        f'[cameras.talk]\nurl = "{camera.url_at("/aac")}"\nusername = "{camera.user}"\n'
        f'password = "{camera.password}"\naudio = true\n\n'
        f'[cameras.alaw]\nurl = "{camera.url_at("/alaw")}"\nusername = "{camera.user}"\n'
        f'password = "{camera.password}"\naudio = true\n\n'
        f'[cameras.hls]\nurl = "{hls.url}"\nusername = "{hls.user}"\npassword = "{hls.password}"\n')
    config.chmod(0o600)  # it holds secrets
    d = Daemon(runtime_dir=folder / "run", args=["--config", str(config)], env_extra=mqtt_env(broker, NODE)).start()
    ha.wait(f"{BASE}/availability", lambda m: m.payload == b"online")
    yield d
    d.finish()
    assert camera.password not in d.log() and mjpeg.password not in d.log() and hls.password not in d.log()


def stream_url(d: Daemon) -> str:
    return d.base + d.status()["stream_path"]


def wait_colour(d: Daemon, rgb, timeout: float = 20, where=centre_rgb):
    """Wait until the newest segment's last frame has `rgb` at `where`; returns that frame."""
    url = stream_url(d)

    def found():
        frame = newest_frame(url)
        return frame is not None and close_to(where(frame), rgb, 40) and frame
    return wait_for(found, timeout, interval=0.3, message=f"colour {rgb} in the stream")


def dashboard_on(d: Daemon) -> None:
    """The dashboard on screen: started (a page switch when a session runs), and its colour in the stream
    (a camera a test before left on screen is gone)."""
    assert d.post("/start", json={"dashboard": "page"}).status_code == 200
    d.wait_state("streaming")
    wait_colour(d, PAGE)


def camera_state(d: Daemon, name: str) -> dict | None:
    return next((c for c in d.status().get("cameras", []) if c["name"] == name), None)


def camera_live(d: Daemon, name: str) -> dict:
    """The camera's /status entry once it says `live`. /status follows the encoder's reports (every 0.5 s),
    so it may still say `connecting` a moment after the camera's first segment is listed (seen in a
    clean-clone make test at load ~5, and at load 11)."""
    wait_for(lambda: (camera_state(d, name) or {}).get("state") == "live", 5, interval=0.1,
             message=f"/status: camera {name} live")
    state = camera_state(d, name)
    assert state is not None
    return state


def test_a_camera_interrupts_a_dashboard_in_the_same_session_and_the_dashboard_comes_back(cam_daemon):
    d = cam_daemon
    started = d.post("/start", json={"dashboard": "page"})
    assert started.status_code == 200, started.text
    session = started.json()["session"]
    d.wait_state("streaming")
    wait_colour(d, PAGE)

    asked = time.monotonic()
    interrupt = d.post("/start", json={"camera": "door", "duration": 4, "then": "resume"})
    assert interrupt.status_code == 200, interrupt.text
    body = interrupt.json()
    assert body["session"] == session and body["switched"] is True  # same session: no new LOAD, same URL
    assert body["camera"] == "door"
    wait_colour(d, CAMERA)
    seconds = time.monotonic() - asked
    state = camera_live(d, "door")
    assert state is not None and state["state"] == "live" and state["codec"] == "h264", state
    assert d.status()["url"] == "camera:door"
    print(f"camera at the stream's live edge {seconds:.2f} s after the webhook")

    wait_colour(d, PAGE, timeout=20)  # the interrupt ends: the dashboard is back, same session
    assert d.status()["session"] == session
    assert "page under the camera is back" in d.log()  # the page ran on underneath: no reload
    wait_for(lambda: camera_state(d, "door") is None, 5, message="the camera closed after the interrupt")


def test_a_camera_that_refuses_the_login_is_reported_and_marked_offline_and_the_daemon_stays_healthy(cam_daemon):
    d = cam_daemon
    dashboard_on(d)
    response = d.post("/start", json={"camera": "wrong", "duration": 30, "then": "resume"})
    assert response.status_code == 200, response.text
    state = wait_for(lambda: (s := camera_state(d, "wrong")) and s["failures"] >= 2 and s, 15,
                     message="the login failure in /status, retried")
    assert state["state"] == "offline" and "login refused" in state["error"], state
    status = d.status()
    assert "login refused" in (status["last_error"] or "") and status["page"] == "error"
    assert d.get("/health").status_code == 200
    assert "not-the-password" not in d.log()


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
    dashboard_on(d)
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


def overlay_pixel(frame) -> tuple[int, int, int]:
    """The middle of a 4:3 camera in the top-right overlay box (half the picture's width and height,
    2.5% margin: castd/encoder/compose.py), above the camera's time strip."""
    box_h = frame.height // 2
    width = box_h * 4 // 3
    margin = frame.width * 25 // 1000
    return rgb_at(frame, frame.width - margin - width // 2, margin + box_h // 3)


def test_a_camera_overlay_sits_in_a_corner_over_the_running_page_and_goes_away(cam_daemon):
    d = cam_daemon
    dashboard_on(d)
    session = d.status()["session"]
    asked = time.monotonic()
    response = d.post("/start", json={"camera": "door", "overlay": "top-right", "duration": 4})
    assert response.status_code == 200, response.text
    assert response.json()["session"] == session and response.json()["overlay"] == "top-right"
    frame = wait_colour(d, CAMERA, where=overlay_pixel)
    print(f"overlay at the stream's live edge {time.monotonic() - asked:.2f} s after the webhook")
    assert close_to(centre_rgb(frame), PAGE, 40)  # the page around it
    assert close_to(rgb_at(frame, frame.width // 10, frame.height * 9 // 10), PAGE, 40)
    assert close_to(rgb_at(frame, frame.width * 9 // 10, frame.height * 9 // 10), PAGE, 40)
    status = d.status()
    assert [o["camera"] for o in status["overlays"]] == ["door"] and status["url"] != "camera:door"
    assert camera_live(d, "door")["shown"] == "overlay"
    wait_colour(d, PAGE, where=overlay_pixel, timeout=20)  # its duration is over: the page again
    assert d.status()["overlays"] == [] and d.status()["session"] == session


def test_the_cli_starts_a_camera_and_lists_cameras_with_their_credentials_masked(cam_daemon, camera):
    d = cam_daemon
    listing = d.get("/dashboards").json()
    cameras = {c["name"]: c for c in listing["cameras"]}
    assert cameras["door"]["url"] == camera.url and cameras["door"]["transport"] == "tcp"
    assert cameras["inline"]["url"] == f"rtsp://***@127.0.0.1:{camera.port}/cam"
    text = castd_cli(d, "dashboards")
    assert "camera inline: rtsp://***@" in text.stdout and camera.password not in text.stdout

    dashboard_on(d)
    started = castd_cli(d, "start", "--camera", "inline", "--duration", "30", "--then", "resume")
    assert started.returncode == 0 and "camera inline" in started.stdout, started.stdout + started.stderr
    wait_colour(d, CAMERA)
    camera_live(d, "inline")  # (/status follows the encoder's 0.5 s reports: the colour can come first)
    assert re.search(r"camera inline +live \(full\) h264 320x240", castd_cli(d, "status").stdout)
    overlay = castd_cli(d, "start", "--camera", "door", "--overlay", "bottom-left", "--duration", "30")
    assert overlay.returncode == 0 and "over the picture (bottom-left)" in overlay.stdout, overlay.stdout
    assert [o["position"] for o in d.status()["overlays"]] == ["bottom-left"]
    assert d.post("/start", json={"camera": "door", "overlay": "off"}).status_code == 200
    assert d.status()["overlays"] == []
    assert camera.password not in d.log()


def test_camera_config_is_checked_and_its_passwords_make_the_file_a_secret(tmp_path):
    from castd.config import ConfigError, load_config
    path = tmp_path / "castd.toml"
    for text, problem in (('[cameras.door]\nurl = "ftp://cam/x"\n', "cameras.door.url: must be a rtsp://"),
                          ('[cameras.door]\nurl = "rtsp://cam/x"\nport = 1\n', "cameras.door.port: unknown key"),
                          ('[cameras.door]\nurl = "rtsp://cam/x"\ntransport = "quic"\n', "transport"),
                          ('[cameras." door"]\nurl = "rtsp://cam/x"\n', "cameras.name")):
        path.write_text(text)
        path.chmod(0o600)
        with pytest.raises(ConfigError, match=problem):
            load_config(path, environ={})
    path.write_text('[cameras.door]\nurl = "rtsp://admin:hunter2-cam@cam/x"\n')
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="holds secrets"):
        load_config(path, environ={})
    path.chmod(0o600)
    config = load_config(path, environ={})
    assert "hunter2-cam" in config.log_secrets()


def test_a_snapshot_is_shown_while_the_stream_does_not_come_and_then_marked_offline(cam_daemon):
    d = cam_daemon
    dashboard_on(d)
    assert d.post("/start", json={"camera": "snap", "duration": 60, "then": "resume"}).status_code == 200
    frame = wait_colour(d, MJPEG)  # the snapshot, long before the stream's 5 s timeout
    # /status follows the encoder's 0.5 s reports: the held snapshot can reach the stream first (Debian 13's CI)
    state = wait_for(lambda: camera_state(d, "snap"), 5, interval=0.1, message="/status listing the camera")
    assert state["state"] == "connecting", state
    assert close_to(mark_pixel(frame), MJPEG, 40)  # no mark while the first connection is being made
    wait_colour(d, (0, 0, 0), where=mark_pixel)  # the stream timed out: the snapshot is marked offline
    # /status hears of it with the encoder's next report (every 0.5 s; later under load, as on Debian 13's run)
    state = wait_for(lambda: (s := camera_state(d, "snap")) and s["state"] == "offline" and s, 10,
                     message="/status saying the camera is offline")
    assert "no answer" in state["error"], state


def test_retries_back_off_from_half_a_second_to_fifteen():
    from castd.encoder.camera import backoff
    assert [backoff(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 15, 15, 15]


def test_overlays_keep_the_cameras_aspect_inside_their_corner():
    from castd.encoder.compose import fit, overlay_box
    from castd.protocol import Overlay
    assert fit(1920, 1080, 1280, 720) == (1280, 720) and fit(640, 480, 1280, 720) == (960, 720)
    assert overlay_box(Overlay(camera="c", position="top-right"), 0.5, 1280, 720, 640, 480) == (768, 32, 480, 360)
    assert overlay_box(Overlay(camera="c", position="bottom-left"), 0.25, 1280, 720, 1920, 1080) == (32, 508, 320, 180)


def test_home_assistant_gets_a_camera_select_and_a_doorbell_automation_works_over_mqtt(cam_daemon, ha):
    d = cam_daemon
    dashboard_on(d)
    message = ha.wait(f"homeassistant/device/{NODE}/config", lambda m: bool(m.payload))
    problems, expanded = check(message.topic, json.loads(message.payload))
    assert not problems, problems
    select = expanded["components"]["camera"]
    assert select["platform"] == "select" and select["options"] == ["None", "door", "wrong", "inline", "mjpeg",
                                                                      "snap", "talk", "alaw", "hls"]
    assert select["command_topic"] == f"{BASE}/camera/set"
    session = d.status()["session"]
    # the README's doorbell automation: a JSON start on <base>/start, then the dashboard comes back
    ha.publish(f"{BASE}/start", json.dumps({"camera": "door", "duration": 4, "then": "resume"}))
    wait_colour(d, CAMERA)
    assert d.status()["session"] == session  # joined the running session (no quality or device given)
    # (the url turns first; the cameras list is the encoder's next report: a state between has none)
    state = ha.wait(f"{BASE}/state", lambda m: m.json()["url"] == "camera:door" and m.json()["cameras"]).json()
    env = ImmutableSandboxedEnvironment()
    assert env.from_string(select["value_template"]).render(value_json=state) == "door"
    assert [c["name"] for c in state["cameras"]] == ["door"] and "last_frame_at" not in state["cameras"][0]
    wait_colour(d, PAGE)
    ha.publish(f"{BASE}/camera/set", "mjpeg")  # the select
    wait_colour(d, MJPEG)
    assert d.status()["session"] == session
    ha.publish(f"{BASE}/camera/set", "nope")
    error = ha.wait(f"{BASE}/error", lambda m: "nope" in m.payload.decode()).json()
    assert error["status"] == 404 and "door" in error["error"]


def test_at_the_glass_a_doorbell_interrupt_plays_through_with_one_load_and_no_stall(cam_daemon):
    """The fake Cast device plays castd's stream in Shaka Player 4.16 (the receiver's engine): dashboard ->
    camera -> dashboard is one LOAD, and the player never stalls for a frame or more. The camera is the one
    with its sound on (audio = true): silence, the camera's AAC, silence again, in the one track the LOAD's
    stream always had."""
    d = cam_daemon
    with FakeCastDevice(name=f"castd camera TV {os.getpid()}", engine="shaka4") as tv:
        started = time.time()
        response = d.post("/start", json={"dashboard": "page", "device": f"127.0.0.1:{tv.port}"})
        assert response.status_code == 200, response.text
        tv.wait_colour(PAGE, timeout=40, after=started, tolerance=80)
        tv.wait_for(lambda: tv.player_state == "PLAYING", timeout=20, what="the player PLAYING")
        asked = time.time()
        interrupt = d.post("/start", json={"camera": "talk", "duration": 5, "then": "resume"})
        assert interrupt.status_code == 200 and interrupt.json()["switched"], interrupt.text
        camera = tv.wait_colour(CAMERA, timeout=30, after=asked, tolerance=80)
        back = tv.wait_colour(PAGE, timeout=30, after=camera.t, tolerance=80)
        print(f"at the glass: camera {camera.t - asked:.2f} s after the webhook, the dashboard back "
              f"{back.t - (asked + 5):.2f} s after the interrupt's end")
        state = tv.player
        assert len(tv.loads) == 1, "the camera and the way back must send the TV nothing"
        assert state.playing and not state.critical, (tv.player_state, state.errors)
        assert state.stalls_of_a_frame_or_more(0.1) == [], [(round(x.at, 2), round(x.seconds(state.now), 3))
                                                             for x in state.stalls]
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


def castd_cli(d: Daemon, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTD_")}
    return subprocess.run([sys.executable, "-m", "castd", *args], capture_output=True, text=True, timeout=60,
                          env={**env, "CASTD_PORT": str(d.port)}, cwd=ROOT)


def test_an_mjpeg_camera_over_http_starts_a_session_of_its_own(cam_daemon):
    d = cam_daemon
    d.post("/stop")
    d.wait_state("idle")
    response = d.post("/start", json={"camera": "mjpeg", "duration": 60})
    assert response.status_code == 200, response.text
    d.wait_state("streaming")
    wait_colour(d, MJPEG)
    state = camera_live(d, "mjpeg")
    assert state["state"] == "live" and state["codec"] == "mjpeg", state
    assert d.status()["page"] == "loaded"
    d.post("/stop")
    d.wait_state("idle")


class StillPage:
    """The page thread's side the scene reads (a page loaded long ago, never asked again)."""

    loaded_token, loaded_at, holding = 1, 0.0, False

    def navigate(self, url, nav, page=None) -> int:
        return 1


def test_a_camera_gone_from_the_config_shows_an_offline_card_instead_of_failing_the_encoder():
    import av

    from castd.encoder.scene import Scene
    reports = []
    scene = Scene(StillPage(), {}, 1280, 720, reports.append)
    token = scene.navigate("camera:gone", 3)
    assert scene.loaded_token == token and "not in the config" in reports[0].error
    page = av.VideoFrame(1280, 720, "yuv420p")
    frame = scene.compose(page, 10.0)
    assert frame is not page and close_to(rgb_at(frame, 640, 360), (28, 28, 28), 8)  # the dark card (Y 40)
    assert close_to(rgb_at(frame, 26, 26), (0, 0, 0), 8)  # the mark's black box, 2% in from the corner
    scene.close()


def strip_step(frame) -> int:
    """The camera's time strip (its bottom sixth, grey level n * 36 for step n) read from the luma plane."""
    plane = frame.planes[0]
    y = bytes(plane)[frame.height * 95 // 100 * plane.line_size + frame.width // 2]
    return round((y - 16) * 255 / 219 / (255 // (TIME_STEPS - 1)))


def tone_step(frame) -> int | None:
    """The step whose tone an AAC frame holds (its pitch by zero crossings: 500 Hz, 21 in 1024 samples),
    or None: silence, or a frame across a step (two pitches)."""
    samples = array.array("f", bytes(frame.planes[0]))[:frame.samples]
    crossings = sum(1 for a, b in zip(samples, samples[1:]) if (a < 0) != (b < 0))
    hz = crossings / 2 * frame.sample_rate / frame.samples
    step = round((hz - TONE_BASE) / TONE_STEP)
    return step if 0 <= step < TIME_STEPS and abs(hz - TONE_BASE - step * TONE_STEP) < TONE_STEP / 3 else None


def steps_in(data: bytes) -> tuple[list[tuple[float, int]], list[tuple[float, int | None]], list[tuple[int, int]]]:
    """Video (time, strip step), audio (time, tone step) and audio packets (pts, duration) of TS segments."""
    video, audio, packets = [], [], []
    with open_segment(data) as container:
        for packet in container.demux():
            if packet.stream.type == "audio" and packet.size:
                packets.append((packet.pts, packet.duration))
            for frame in packet.decode():
                if packet.stream.type == "video":
                    video.append((float(frame.time), strip_step(frame)))
                else:
                    audio.append((float(frame.time), tone_step(frame)))
    return video, audio, packets


def changes(series) -> list[tuple[float, tuple[int, int]]]:
    """When a step sequence moves on: (time of the first sample with the new step, (old, new))."""
    found, last = [], None
    for t, step in series:
        if step is None:
            continue
        if last is not None and step != last:
            found.append((t, (last, step)))
        last = step
    return found


@pytest.mark.parametrize("name, codec", [("talk", "aac (passed through)"), ("alaw", "pcm_alaw 8000 Hz -> aac")])
def test_a_camera_with_audio_true_has_its_sound_in_the_stream_in_sync_with_its_picture(cam_daemon, name, codec):
    """The camera's tone steps in pitch with its picture's time strip: castd's stream carries the tone (passed
    through as AAC, or G.711 transcoded), its steps within a frame loop tick or two of the strip's, with no gap
    in the audio track; the dashboard back, the track is silent again (and a camera without audio = true never
    had sound: the other tests' cameras)."""
    d = cam_daemon
    dashboard_on(d)
    assert d.post("/start", json={"camera": name, "duration": 60, "then": "resume"}).status_code == 200
    wait_colour(d, CAMERA)
    state = camera_live(d, name)
    assert state["audio"] == codec, state
    playlist = media_playlist_url(stream_url(d))
    first = segment_urls(playlist)[-1]
    count = round(3 / STREAM_FORMATS[d.status()["stream_format"]].segment_seconds)  # 3 s of the camera
    urls = wait_for(lambda: (u := segment_urls(playlist)) and first in u and len(u) - u.index(first) > count and u,
                    15, message="three seconds of the camera")
    data = b"".join(fetch_segment(url) for url in urls[urls.index(first) + 1:])
    video, audio, packets = steps_in(data)
    heard = [s for _, s in audio if s is not None]
    assert len(heard) > 0.8 * len(audio), f"the tone in {len(heard)} of {len(audio)} AAC frames"
    assert all(b[0] == a[0] + a[1] for a, b in zip(packets, packets[1:])), "a gap or an overlap in the audio"
    offsets = []
    for at, change in changes(video):
        heard_at = [t for t, c in changes(audio) if c == change and abs(t - at) < 1.0]
        if heard_at:
            offsets.append(min(heard_at, key=lambda t: abs(t - at)) - at)
    assert len(offsets) >= 6, (changes(video), changes(audio))  # 4 steps a second
    lag = statistics.median(offsets)
    print(f"{name} ({codec}): the sound {lag * 1000:+.0f} ms from the picture (median of {len(offsets)} steps, "
          f"{min(offsets) * 1000:+.0f} to {max(offsets) * 1000:+.0f})")
    assert abs(lag) <= 0.15, offsets  # a frame loop tick at 10 fps is 0.1 s; lips look wrong from ~0.2 s

    if name != "talk":
        return  # (the way back is the same for both)
    dashboard_on(d)
    back = segment_urls(playlist)[-1]  # (it ends with the page's first frame: camera sound before it)
    after = wait_for(lambda: (u := segment_urls(playlist)) and back in u and len(u) - u.index(back) > 2 and u[-1], 10,
                     message="two segments of the dashboard")
    _, audio, _ = steps_in(fetch_segment(after))
    assert audio and all(s is None for _, s in audio)  # silence again


def test_an_hls_camera_over_http_is_shown_at_its_own_pace(cam_daemon):
    """An HLS camera's segments arrive whole (FFmpeg reads a 1 s segment in milliseconds): its pictures are
    handed out at their own timestamps, so one second of castd's stream shows the camera's time strip step
    (4 steps a second) instead of one picture per segment."""
    d = cam_daemon
    dashboard_on(d)
    assert d.post("/start", json={"camera": "hls", "duration": 30, "then": "resume"}).status_code == 200
    wait_colour(d, HLS)
    state = camera_live(d, "hls")
    assert state["state"] == "live" and state["codec"] == "h264", state
    playlist = media_playlist_url(stream_url(d))
    first = segment_urls(playlist)[-1]
    urls = wait_for(lambda: (u := segment_urls(playlist)) and first in u and len(u) - u.index(first) > 2 and u, 10,
                    message="two segments of the camera")
    video, _, _ = steps_in(fetch_segment(urls[urls.index(first) + 1]))
    steps = [step for _, step in video]
    assert len(changes(video)) >= 2, steps  # unpaced: one picture (one step) for the whole segment


def test_a_cameras_sound_is_taken_beside_its_picture_and_resynced_when_it_drifts():
    from castd.encoder.audio import UNIT, AudioFeed
    feed = AudioFeed()
    assert feed.take(5.0) is None  # no picture yet: no clock to place the sound by
    feed.saw_picture(10.0, 110.0)  # the picture of camera time 10 s was decoded at 110 s on our clock
    for n in range(80):
        feed.put(9.0 + n * UNIT, str(n).encode())  # 9 s to 10.7 s of sound, one frame each
    first = round(1.0 / UNIT)
    assert feed.take(110.0) == str(first).encode() and feed.dropped == 0  # camera 10 s (what came before skipped)
    assert feed.take(110.0 + UNIT) == str(first + 1).encode()  # then in order
    assert feed.take(110.5) is not None  # 0.5 s on (a burst of pictures): re-synced by dropping the late sound
    assert 15 <= feed.dropped <= 22, feed.dropped
    assert feed.take(115.0) is None and feed.waits == 1  # the sound ran out: silence, counted
    feed.put(21.0, b"early")
    assert feed.take(120.0) is None and feed.units  # too early for camera time 20 s: kept for its moment
    assert feed.take(121.0) == b"early"
    feed.restart()
    assert feed.offset is None and not feed.units


def test_the_stream_carries_the_sound_of_the_camera_on_screen_else_of_the_first_overlay_with_sound(mute):
    """Scene.audio_feed, the decision the frame loop hands the track each frame (cameras that never answer:
    the readers run, their pictures are set here)."""
    import av

    from castd.config import Camera
    from castd.encoder.scene import Scene
    from castd.protocol import Overlay
    cameras = {name: Camera(url=f"rtsp://127.0.0.1:{mute}/{name}", audio=name != "quiet")
               for name in ("quiet", "door", "yard")}
    scene = Scene(StillPage(), cameras, 1280, 720, lambda _: None)
    try:
        scene.navigate("https://dashboard.example/", 1)
        assert scene.audio_feed() is None  # a page: silence
        scene.set_overlays([Overlay(camera="quiet", position="top-left"), Overlay(camera="yard")])
        readers = scene.readers()
        assert scene.audio_feed() is None  # no picture from the yard yet: its sound would be the only sign
        readers["yard"].frame = readers["quiet"].frame = av.VideoFrame(320, 240, "yuv420p")
        assert scene.audio_feed() is readers["yard"].audio  # the quiet camera has no sound to give
        scene.navigate("camera:door", 2)
        assert scene.audio_feed() is None  # the door is wanted full screen: its sound once its picture is up
        door = scene.readers()["door"]
        assert door.audio is not None
        door.frame = av.VideoFrame(320, 240, "yuv420p")
        assert scene.loaded_token == 2 and scene.audio_feed() is door.audio
    finally:
        scene.close()
