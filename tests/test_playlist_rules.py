"""Every playlist castd serves obeys RFC 8216's rules for live playlists, and every segment holds
the media its EXTINF says, on one timeline: at the start, across page switches and across an
encoder SIGKILL (timestamps go on, one DISCONTINUITY, EXT-X-DISCONTINUITY-SEQUENCE once it leaves).

The checks live in tests/hlsrules.py (playlists parsed by the m3u8 library); the first tests here
prove they catch the defects castd's stream used to have."""

import os
import signal
import threading
import time

import av
import httpx
import m3u8
import msgspec
import pytest

from castd.api.freshedge import FRESH_SHARE
from castd.encoder import hls
from castd.encoder.hls import STATE_FILE, HlsOutput, MediaPlaylist, PlaylistState
from castd.paths import MEDIA_PLAYLIST, sessions_dir
from castd.presets import STREAM_FORMATS, get_preset
from castd.protocol import Timeline
from castd.encoder.bridge import Bridge
from helpers import close_to, last_frame_of, media_playlist_url, rgb_at, wait_for
from hlsrules import Listed, PlaylistWatch, listed_segments, playlist_problems, reload_problems, timeline_problems

# The timeline tests below place keyframes by hand on 1 s segments; each format's own segments and tags are
# checked in test_each_stream_format_lists_its_segment_length_and_start_tags_within_the_rules.
PRESET = get_preset("720p", "hls-1s")

OLD_START = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:1
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY
#EXTINF:0.700000,
seg00000.ts
#EXTINF:1.000000,
seg00001.ts
"""


def picture(value):
    frame = av.VideoFrame(PRESET.width, PRESET.height, "bgr0")
    frame.planes[0].update(bytes([value, value, value, 0]) * (PRESET.width * PRESET.height))
    return frame


def test_the_checks_catch_what_the_old_stream_did():
    assert any("DISCONTINUITY before" in p for p in playlist_problems(OLD_START))
    # a DISCONTINUITY leaves the window and the sequence number stays 0
    with_tag = ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:4\n"
                "#EXTINF:1.0,\nseg00004.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.0,\nseg00005.ts\n#EXTINF:1.0,\nseg00006.ts\n")
    moved = ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:6\n"
             "#EXTINF:1.0,\nseg00006.ts\n#EXTINF:1.0,\nseg00007.ts\n#EXTINF:1.0,\nseg00008.ts\n")
    assert any("DISCONTINUITY-SEQUENCE 0, expected 1" in p for p in reload_problems([with_tag, moved]))
    assert any("TARGETDURATION changed" in p
               for p in reload_problems([moved, moved.replace("DURATION:1", "DURATION:2")]))
    assert any("rounds above" in p
               for p in playlist_problems(moved.replace("#EXTINF:1.0,\nseg00007", "#EXTINF:1.6,\nseg00007")))


def test_the_timeline_check_sees_a_segment_that_holds_less_than_its_extinf(tmp_path):
    output = HlsOutput(tmp_path, PRESET)
    for i in range(35):
        output.write_video(picture(i * 7), 100 + i / PRESET.fps)
    segments = listed_segments((tmp_path / "stream.m3u8").read_text())
    for s in segments:
        s.data = (tmp_path / s.uri).read_bytes()
    assert segments and timeline_problems(segments, PRESET.fps) == []
    # the old first segment: one frame, listed as 0.7 s, the next one 0.7 s later
    one_frame = Listed(0, "x.ts", 0.7, False, segments[0].data)
    assert any("held" in p for p in timeline_problems([one_frame], PRESET.fps))
    stretched = [Listed(s.msn, s.uri, s.duration + (0.3 if s.msn == 1 else 0), False, s.data) for s in segments]
    assert any("jump" in p for p in timeline_problems(stretched, PRESET.fps))


def test_a_frame_captured_late_leaves_no_hole_and_no_long_segment(tmp_path):
    """The capture loop held up 2.7 s (seen at load 30): the previous picture fills the time."""
    output = HlsOutput(tmp_path, PRESET, held=(0.6,))
    times = [100 + i / PRESET.fps for i in range(12)] + [103.9 + i / PRESET.fps for i in range(25)]
    for i, at in enumerate(times):
        output.write_video(picture(i * 6), at, keyframe=i == 1)
    segments = listed_segments((tmp_path / "stream.m3u8").read_text())
    for s in segments:
        s.data = (tmp_path / s.uri).read_bytes()
    assert timeline_problems(segments, PRESET.fps) == []
    assert all(s.duration <= 1.0 for s in segments) and output.media_end > 5.0  # the 2.7 s are in


def test_the_window_counts_discontinuities_and_keeps_three_target_durations():
    playlist = MediaPlaylist(PlaylistState(size=4))
    for _ in range(3):
        playlist.add(1.0)
    playlist.add(1.0, discontinuity=True)
    assert playlist.state.discontinuity_sequence == 0
    for n in range(6):
        playlist.add(0.6)  # short segments (page cuts): the window grows to keep 3 s
        text = playlist.render()
        assert playlist_problems(text) == [], text
        assert sum(s.duration for s in playlist.state.segments) >= 3
    assert playlist.state.discontinuity_sequence == 1 and "#EXT-X-DISCONTINUITY-SEQUENCE:1" in text
    assert m3u8.loads(text).media_sequence == playlist.state.segments[0].number


@pytest.mark.parametrize("stream_format", list(STREAM_FORMATS))
def test_each_stream_format_lists_its_segment_length_and_start_tags_within_the_rules(tmp_path, stream_format,
                                                                                     monkeypatch):
    """The format sets the keyframe interval (= the segment length), HOLD-BACK and EXT-X-START, and what
    the first hold lists at once; every version of the playlist written obeys the rules (EXT-X-START
    included: Debian 13's CI read a playlist of 1 s under EXT-X-START -1.5 while the hold was listed
    segment by segment)."""
    preset = get_preset("720p", stream_format)
    shape = preset.stream
    snapshots: list[str] = []
    write = hls.write_atomic

    def every_version(path, text):  # the real write, each version of the media playlist noted
        if path.name == "stream.m3u8":
            snapshots.append(text)
        write(path, text)

    monkeypatch.setattr(hls, "write_atomic", every_version)
    output = HlsOutput(tmp_path, preset, held=shape.held_segments)
    for i in range(60):
        output.write_video(picture(i * 4), 100 + i / preset.fps, keyframe=i == 1)
        if i == 0:  # the held first picture, in one write: all of it but the segment still open
            assert len(snapshots) == 1 and len(m3u8.loads(snapshots[0]).segments) == output.segments()
            assert output.segments() == len(shape.held_segments) - 1
        if i == 1:  # the page's first cut: the held first picture is listed, whole segments of it, as long
            assert output.segments() == len(shape.held_segments)  # as the format says (1.4 s first in hls-fast-big)
            assert [s.duration for s in m3u8.loads(snapshots[-1]).segments] == list(shape.held_segments)
    output.close()
    problems = [p for t in snapshots for p in playlist_problems(t)] + reload_problems(snapshots)
    assert problems == [], problems[:5]
    pl = m3u8.loads(snapshots[-1])
    assert {s.duration for s in pl.segments[:-1]} == {shape.segment_seconds}
    assert pl.target_duration == 1
    # the window lists playlist_size seconds whatever the segment length (presets.Preset.window_segments)
    assert len(pl.segments) == preset.window_segments and sum(s.duration for s in pl.segments) >= preset.playlist_size
    assert (pl.server_control.hold_back if pl.server_control else None) == shape.hold_back
    assert (pl.start.time_offset if pl.start else None) == shape.start_offset
    # partial segments (hls-fast-parts): each 0.5 s segment of the last three seconds is also one part of
    # itself, the held 1.4 s one never (a part is at most PART-TARGET); the others list none
    parts = [(s.uri, [(p.uri, p.duration) for p in s.parts]) for s in pl.segments]
    if shape.part_hold_back is None:
        assert all(not p for _, p in parts) and not pl.part_inf
    else:
        assert pl.server_control.part_hold_back == shape.part_hold_back and pl.server_control.can_block_reload == "YES"
        assert pl.part_inf.part_target == shape.segment_seconds
        assert parts[-6:] == [(uri, [(uri, shape.segment_seconds)]) for uri, _ in parts[-6:]]
        assert all(not p for _, p in parts[:-6])
        held = m3u8.loads(next(t for t in snapshots if len(m3u8.loads(t).segments) == len(shape.held_segments)))
        assert [len(s.parts) for s in held.segments] == [0, 1, 1, 1]


def test_a_child_that_died_is_continued_on_the_same_timeline(tmp_path):
    """Two HlsOutputs on one folder, the first never closed (SIGKILL leaves it so), the second
    told a stale start by the supervisor: timestamps go on from the playlist's end, one
    DISCONTINUITY, and the sequence number counts it once it leaves the window."""
    snapshots, files = [], {}

    def take():
        text = (tmp_path / "stream.m3u8").read_text() if (tmp_path / "stream.m3u8").exists() else ""
        if text and (not snapshots or text != snapshots[-1]):
            snapshots.append(text)
            for s in listed_segments(text):
                files.setdefault(s.msn, (tmp_path / s.uri).read_bytes())

    first = HlsOutput(tmp_path, PRESET, held=(0.6,))
    for i in range(32):
        first.write_video(picture(i * 5), 100 + i / PRESET.fps + (0.25 if i > 20 else 0), keyframe=i in (1, 14))
        take()
    stale = Timeline(start=first.media_end - 0.8, discontinuity=True)
    second = HlsOutput(tmp_path, PRESET, held=(0.6,), timeline=stale)
    for i in range(90):
        second.write_video(picture(200), 500 + i / PRESET.fps, keyframe=i == 1)
        take()
    second.close()
    segments = {}
    for text in snapshots:
        for s in listed_segments(text):
            segments.setdefault(s.msn, s)
    for msn, s in segments.items():
        s.data = files[msn]
    problems = [p for t in snapshots for p in playlist_problems(t)] + reload_problems(snapshots)
    problems += timeline_problems(list(segments.values()), PRESET.fps)
    assert problems == []
    tagged = [s.msn for s in segments.values() if s.discontinuity]
    assert len(tagged) == 1 and tagged[0] > 0
    assert m3u8.loads(snapshots[-1]).discontinuity_sequence == 1


def test_after_an_outage_media_time_catches_up_with_the_wall_clock(tmp_path):
    """A player's live edge moves with the wall clock: a child restarted 4 s later fills those
    4 s with its first picture (one timeline, no hole), so the stream is live again at once."""
    first = HlsOutput(tmp_path, PRESET, held=(0.6,))
    for i in range(25):
        first.write_video(picture(60), 100 + i / PRESET.fps, keyframe=i == 1)
    state = msgspec.json.decode((tmp_path / STATE_FILE).read_bytes(), type=PlaylistState)
    state.origin = time.time() - state.end - 4.0  # as if the last segment had been listed 4 s ago
    (tmp_path / STATE_FILE).write_bytes(msgspec.json.encode(state))
    second = HlsOutput(tmp_path, PRESET, held=(0.6,))
    for i in range(12):
        second.write_video(picture(200), 500 + i / PRESET.fps, keyframe=i == 1)
    listed = listed_segments((tmp_path / "stream.m3u8").read_text())
    for s in listed:
        s.data = (tmp_path / s.uri).read_bytes()
    assert timeline_problems(listed, PRESET.fps) == []
    assert any(s.discontinuity for s in listed)
    assert second.media_end - state.end >= 4.0  # the outage is filled (timeline_problems: without a hole)


def test_a_restarted_child_holds_the_last_picture_until_its_page_is_back(tmp_path):
    """The crash bridge: a child continuing a session after a break lists the last picture the
    session had (decoded from its last segment) on the same timeline, at once, with one DISCONTINUITY;
    then its capture takes the output over."""
    first = HlsOutput(tmp_path, PRESET, held=(0.6,))
    for i in range(25):
        first.write_video(picture(90), time.monotonic(), keyframe=i == 1)
        time.sleep(0.01)
    listed_before = first.segments()
    bridge = Bridge.begin(tmp_path, PRESET, Timeline(start=first.media_end, discontinuity=True))
    assert bridge is not None
    wait_for(lambda: bridge.output.segments() >= listed_before + 2, 10, message="the bridge lists segments")
    held = bridge.end()
    output = bridge.output
    for i in range(12):  # the capture loop: the page's first picture, then on
        output.write_video(picture(200), time.monotonic(), keyframe=i == 1)
    output.close()
    listed = listed_segments((tmp_path / "stream.m3u8").read_text())
    for s in listed:
        s.data = (tmp_path / s.uri).read_bytes()
    assert timeline_problems(listed, PRESET.fps) == []
    after = [s for s in listed if s.msn >= listed_before]
    assert after[0].discontinuity and sum(s.discontinuity for s in listed) == 1
    assert rgb_at(held.reformat(format="rgb24"), 10, 10)[0] in range(80, 101)
    shown = rgb_at(last_frame_of(after[0].data), PRESET.width // 2, PRESET.height // 2)
    assert close_to(shown, (90, 90, 90), 12), shown  # the old picture, not black and not the new page


def test_no_bridge_without_a_picture_to_hold(tmp_path):
    assert Bridge.begin(tmp_path, PRESET, Timeline(start=3.0, discontinuity=True)) is None


def test_no_bridge_when_the_last_segment_holds_no_video(tmp_path):
    """A last segment with audio only (seen after encoder SIGKILLs in bench/month.py): no picture to hold,
    and the new child goes on without a bridge instead of crashing with IndexError."""
    first = HlsOutput(tmp_path, PRESET, held=(0.6,))
    for i in range(25):
        first.write_video(picture(90), time.monotonic(), keyframe=i == 1)
        time.sleep(0.01)
    last = listed_segments((tmp_path / "stream.m3u8").read_text())[-1]
    with av.open(str(tmp_path / last.uri), "w", format="mpegts") as out:  # the segment: AAC silence only
        stream = out.add_stream("aac", rate=48000)
        for i in range(10):
            frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate, frame.pts = 48000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    assert Bridge.begin(tmp_path, PRESET, Timeline(start=first.media_end, discontinuity=True)) is None


# ---- through the real daemon (the module's, from conftest.py) -------------------------------
def test_every_playlist_served_through_start_switches_and_a_sigkill_obeys_the_rules(daemon, pages):
    d = daemon
    body = d.post("/start", json={"url": pages.url("/color/c02020")}).json()
    master = body["stream_url"]
    wait_for(lambda: d.get(master.removeprefix(d.base)).status_code == 200, 30, message="master playlist")
    with PlaylistWatch(media_playlist_url(master)) as watch:
        d.wait_state("streaming", timeout=30)
        for colour in ("2020c0", "20c020", "c0c020"):
            watch.wait_segments(2, 20)
            d.post("/start", json={"url": pages.url(f"/color/{colour}")})
        watch.wait_segments(2, 20)
        pid = d.status()["encoder_pid"]
        d.record_descendants()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: d.status()["encoder_pid"] not in (None, pid), 20, message="a new encoder")
        d.wait_state("streaming", timeout=30)
        # the DISCONTINUITY leaves the window (the daemon's own format: the default's window)
        watch.wait_segments(get_preset("720p").window_segments + 2, 30)
    d.post("/stop")
    problems = watch.problems(PRESET.fps)
    assert problems == [], "\n".join(problems[:30])
    segments = sorted(watch.segments.values(), key=lambda s: s.msn)
    assert segments[0].msn == 0 and not segments[0].discontinuity
    tagged = [s.msn for s in segments if s.discontinuity]
    assert len(tagged) == 1, tagged
    # the restarted encoder's first segment shows the page's picture, never black (the bridge's own check is above)
    bridged = rgb_at(last_frame_of(watch.segments[tagged[0]].data), PRESET.width // 2, PRESET.height // 2)
    assert close_to(bridged, (0xc0, 0xc0, 0x20), 40), bridged
    last = m3u8.loads(watch.snapshots[-1])
    assert last.discontinuity_sequence == 1 and not any(s.discontinuity for s in last.segments)
    assert len(watch.snapshots) >= 10  # it saw the playlist grow, version by version


def test_a_playlist_read_at_any_moment_lists_a_segment_only_just_listed(daemon, pages):
    """A player's live edge is the newest segment's end as of its first read, for the whole session
    (castd/api/freshedge.py): read at 12 phases of the segment clock, the newest segment served was listed
    at most FRESH_SHARE of a segment before the answer, where its age used to be the phase (7 of 12 over it).
    Listing times are taken from the file on disk, polled every 5 ms beside the requests."""
    d = daemon
    body = d.post("/start", json={"url": pages.url("/color/2080c0")}).json()
    d.wait_state("streaming", timeout=30)
    media = media_playlist_url(body["stream_url"])
    on_disk = sessions_dir(d.runtime_dir) / body["session"] / MEDIA_PLAYLIST
    segment = get_preset("720p").segment_seconds  # the daemon's format: the default
    listed_at: dict[int, float] = {}
    done = threading.Event()

    def note_listings():
        while not done.is_set():
            try:
                newest = listed_segments(on_disk.read_text())[-1].msn
            except (OSError, IndexError):
                newest = None
            if newest is not None:
                listed_at.setdefault(newest, time.time())
            time.sleep(0.005)

    watcher = threading.Thread(target=note_listings, daemon=True)
    watcher.start()
    ages = []
    try:
        wait_for(lambda: listed_at, 5, interval=0.01, message="a listing seen on disk")
        last_listing = max(listed_at.values())
        for k in range(12):  # ask at 12 phases of the segment clock, 0 to 11/12 of a segment after a listing
            at = last_listing + segment * k / 12
            while at < time.time():
                at += segment
            time.sleep(at - time.time())
            text = httpx.get(media, timeout=5).text
            answered = time.time()
            newest = listed_segments(text)[-1].msn
            wait_for(lambda: newest in listed_at, 5, interval=0.01, message="the listing seen on disk")
            last_listing = listed_at[newest]
            ages.append(round(answered - last_listing, 3))
    finally:
        done.set()
        watcher.join()
    fresh = [age for age in ages if age <= FRESH_SHARE * segment + 0.05]
    assert len(fresh) >= 10, f"ages of the newest segment served: {ages}"


def test_the_partial_segment_rules_find_what_breaks_them():
    """tests/hlsrules.part_problems, on playlists that break each rule it checks (so a pass means something)."""
    head = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
    control = "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,HOLD-BACK=3.000,PART-HOLD-BACK=1.500\n"
    info = "#EXT-X-PART-INF:PART-TARGET=0.500\n"

    def seg(n, length=0.5, part=True):
        return (f'#EXT-X-PART:DURATION={length:.3f},URI="s{n}.ts",INDEPENDENT=YES\n' if part else "") + \
            f"#EXTINF:{length:.3f},\ns{n}.ts\n"

    good = head + control + info + "".join(seg(n) for n in range(6))
    assert playlist_problems(good) == []
    cases = {
        head + control + "".join(seg(n) for n in range(6)): "without EXT-X-PART-INF",
        head + "#EXT-X-SERVER-CONTROL:HOLD-BACK=3.000,PART-HOLD-BACK=1.500\n" + info + seg(0): "CAN-BLOCK-RELOAD",
        head + "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,HOLD-BACK=3.000,PART-HOLD-BACK=0.800\n" + info + seg(0):
            "under twice PART-TARGET",
        head + "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,HOLD-BACK=3.000\n" + info + seg(0): "without PART-HOLD-BACK",
        head + control + info + seg(0, 0.8): "over PART-TARGET",
        head + control + info + "".join(seg(n) for n in range(8)): "over three target durations",
        head + control + info + "".join(seg(n, part=False) for n in range(6)): "without any EXT-X-PART",
    }
    for text, words in cases.items():
        problems = playlist_problems(text)
        assert any(words in p for p in problems), (words, problems)
