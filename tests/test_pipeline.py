"""The real pipeline: Chromium on Xvfb -> PyAV -> HLS over HTTP, decoded and checked pixel by pixel."""

import time

import httpx

from helpers import (close_to, descendants, fetch_segment, last_frame_of, media_playlist_url, open_segment,
                     rgb_at, segment_urls, still_alive, wait_for, comm)

from castd.presets import get_preset

RED, BLUE = (255, 0, 0), (0, 0, 255)
PRESET = get_preset("720p")  # the default stream format's: the daemon here runs with it


def start(daemon, url, **extra):
    response = daemon.post("/start", json={"url": url, **extra})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] in ("starting", "streaming")
    return body


def wait_segments(media_url, count, timeout=20):
    return wait_for(lambda: (urls := segment_urls(media_url)) and len(urls) >= count and urls, timeout,
                    message=f"{count} segments")


def h264_sps(data: bytes) -> tuple[int, int]:
    """(profile_idc, level_idc) of the first SPS in an MPEG-TS segment's H.264 stream."""
    with open_segment(data) as container:
        for packet in container.demux(video=0):
            raw = bytes(packet)
            at = raw.find(b"\x00\x00\x01\x67")
            if at != -1:
                return raw[at + 4], raw[at + 6]
    raise AssertionError("no SPS in segment")


def test_stream_decodes_to_the_page(idle_daemon, pages):
    d = idle_daemon
    body = start(d, pages.url("/color/ff0000"), quality="720p")
    assert body["stream_url"].endswith(f"/stream/{body['session']}/index.m3u8")
    master = httpx.get(body["stream_url"], timeout=5)
    # the master playlist appears with the first encoded frame; wait for it
    master = wait_for(lambda: (r := httpx.get(body["stream_url"], timeout=5)).status_code == 200 and r, 20,
                      message="master playlist")
    assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert master.headers["access-control-allow-origin"] == "*"
    assert "no-cache" in master.headers["cache-control"]
    assert 'CODECS="avc1.64' in master.text and "mp4a.40.2" in master.text
    assert "RESOLUTION=1280x720" in master.text
    media_url = media_playlist_url(body["stream_url"])
    media = httpx.get(media_url, timeout=5).text
    assert "#EXT-X-ENDLIST" not in media and "#EXT-X-TARGETDURATION:1" in media
    d.wait_state("streaming")
    urls = wait_segments(media_url, 3)
    segment = fetch_segment(urls[-1])
    seg_response = httpx.get(urls[-1], timeout=5)
    assert seg_response.headers["content-type"] == "video/mp2t"
    profile, level = h264_sps(segment)
    assert profile == 100 and level <= 41  # High, <= 4.1
    with open_segment(segment) as container:
        video = container.streams.video[0]
        audio = container.streams.audio
        assert (video.codec_context.width, video.codec_context.height) == (1280, 720)
        assert len(audio) == 1 and audio[0].codec_context.name == "aac" and audio[0].codec_context.channels == 2
        frames = list(container.decode(video=0))
    per_segment = round(PRESET.fps * PRESET.segment_seconds)  # 10 (1 s at 10 fps), 5 in hls-fast's 0.5 s
    assert per_segment - 2 <= len(frames) <= per_segment + 2
    assert frames[0].key_frame and not any(f.key_frame for f in frames[1:])  # one keyframe a segment
    frame = frames[-1]
    for x, y in ((640, 360), (5, 5), (1274, 714)):
        assert close_to(rgb_at(frame, x, y), RED), (x, y, rgb_at(frame, x, y))
    # (the first 3 segments are the held first picture, listed at once: frames are counted as captured)
    status = wait_for(lambda: (s := d.status())["segments"] >= 3 and s["frames"] >= 20 and s, 10,
                      message="status segments and frames")
    assert status["fps"] > 5


def newest_shows(media_url, colour) -> bool:
    """Does the newest listed segment end on a frame of `colour`?"""
    urls = segment_urls(media_url)
    return bool(urls) and close_to(rgb_at(last_frame_of(fetch_segment(urls[-1])), 640, 360), colour)


def test_switch_shows_new_colour_within_3s_on_the_same_stream(idle_daemon, pages):
    d = idle_daemon
    first = start(d, pages.url("/color/ff0000"))
    d.wait_state("streaming")
    media_url = media_playlist_url(first["stream_url"])
    switched_at = time.monotonic()
    second = start(d, pages.url("/color/0000ff"))
    assert second["switched"] is True and second["session"] == first["session"]

    wait_for(lambda: newest_shows(media_url, BLUE), 6, interval=0.1, message="blue segment")
    elapsed = time.monotonic() - switched_at
    assert elapsed <= 3.0, f"new colour took {elapsed:.2f}s"
    assert d.status()["url"].endswith("/color/0000ff")


def test_duration_ends_the_session_by_itself(idle_daemon, pages):
    d = idle_daemon
    body = start(d, pages.url("/color/00ff00"), duration=3)
    status = d.status()
    assert status["ends_at"] is not None and status["ends_at"] - status["started_at"] == 3
    d.wait_state("idle", timeout=15)
    assert httpx.get(body["stream_url"], timeout=5).status_code == 404


def test_stop_removes_files_and_processes(idle_daemon, pages):
    d = idle_daemon
    body = start(d, pages.url("/color/ffff00"))
    d.wait_state("streaming")
    d.record_descendants()
    status = d.status()
    encoder_pid = status["encoder_pid"]
    encoder_tree = descendants(encoder_pid) | {p for p in d.seen if p[0] == encoder_pid}
    assert len(encoder_tree) >= 4  # encoder, Xvfb, chromedriver, Chromium (+ helpers)
    folder = d.runtime_dir / "sessions" / body["session"]
    assert folder.is_dir()
    response = d.post("/stop")
    assert response.status_code == 200 and response.json()["stopped"] == body["session"]
    d.wait_state("idle")
    assert not folder.exists()
    wait_for(lambda: not still_alive(encoder_tree), 5,
             message=f"encoder tree gone: {[(p, comm(p)) for p, _ in still_alive(encoder_tree)]}")
    # what is left below castd: the supervisor and multiprocessing's resource tracker, no browser parts
    left = {p for p, _ in descendants(d.process.pid)}
    assert status["supervisor_pid"] in left and len(left) <= 3, [(p, comm(p)) for p in left]
    assert not any(comm(p) in ("Xvfb", "chromium", "chromedriver") for p in left)
    assert httpx.get(body["stream_url"], timeout=5).status_code == 404
