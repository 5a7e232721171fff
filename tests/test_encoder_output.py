"""The encoder's output path on its own (real PyAV, x264, AAC and hls muxer; pictures made here
instead of grabbed): unchanged pictures, silent audio and a camera's sound, and segments cut at page changes."""

import array
import math

import av
import pytest

from castd.encoder.audio import AUDIO_FRAME, AUDIO_RATE, AudioFeed
from castd.encoder.convert import Yuv420Converter
from castd.encoder.hls import HlsOutput
from castd.encoder.pagecut import SETTLE, Action, PageCut
from castd.presets import STREAM_FORMATS, get_preset
from helpers import close_to, rgb_at

PRESET = get_preset("720p")


def picture(rgb):
    frame = av.VideoFrame(PRESET.width, PRESET.height, "bgr0")
    frame.planes[0].update(bytes([rgb[2], rgb[1], rgb[0], 0]) * (PRESET.width * PRESET.height))
    return frame


def segments(folder):
    out = []
    for path in sorted(folder.glob("seg*.ts")):
        with av.open(str(path)) as container:
            video = list(container.decode(video=0))
        with av.open(str(path)) as container:
            audio = [(p.pts, p.duration) for p in container.demux(audio=0) if p.pts is not None]
        out.append((path.name, video, audio))
    return out


def target_duration(folder):
    for line in (folder / "stream.m3u8").read_text().splitlines():
        if line.startswith("#EXT-X-TARGETDURATION:"):
            return int(line.split(":")[1])
    raise AssertionError("no target duration")


def test_unchanged_picture_is_converted_once_and_stays_right():
    convert = Yuv420Converter()
    red, blue = picture((255, 0, 0)), picture((0, 0, 255))
    first = convert(red)
    assert convert(picture((255, 0, 0))) is first and convert.reused == 1
    changed = convert(blue)
    assert changed is not first and convert.reused == 1
    assert close_to(rgb_at(first, 640, 360), (255, 0, 0)) and close_to(rgb_at(changed, 640, 360), (0, 0, 255))


def test_silent_audio_is_continuous_and_not_encoded(tmp_path):
    output = HlsOutput(tmp_path, PRESET)
    grey = picture((128, 128, 128))
    for i in range(45):
        output.write_video(grey, i / PRESET.fps)
    output.close()
    found = segments(tmp_path)
    assert len(found) >= 4
    packets = [packet for _, _, audio in found for packet in audio]
    assert all(b[0] == a[0] + a[1] for a, b in zip(packets, packets[1:])), "gap or overlap in the audio"
    assert packets[-1][0] + packets[-1][1] - packets[0][0] >= 4.4 * 90000  # covers the video (90 kHz)
    assert output.sound.encoded == 0  # silence is one packet made once, muxed again


def tone(camera_time: float, hz: float = 1000.0) -> av.AudioFrame:
    """One AAC frame of a sine, as a camera's reader puts it in its feed (fltp stereo 48 kHz)."""
    frame = av.AudioFrame(format="fltp", layout="stereo", samples=AUDIO_FRAME)
    first = round(camera_time * AUDIO_RATE)
    data = array.array("f", (0.3 * math.sin(2 * math.pi * hz * (first + n) / AUDIO_RATE) for n in range(AUDIO_FRAME)))
    for plane in frame.planes:
        plane.update(data.tobytes())
    frame.sample_rate = AUDIO_RATE
    return frame


def test_a_cameras_sound_enters_the_track_without_a_gap_and_silence_comes_back(tmp_path):
    """Silence, then a camera's sound (encoded), then silence again, through the real muxer: the track stays
    one gapless run of packets, the sound is in the middle of it, and the ends are silent."""
    output = HlsOutput(tmp_path, PRESET)
    feed = AudioFeed()
    grey = picture((128, 128, 128))
    offset, put = 1000.0, 0.0  # our monotonic clock is the camera's + 1000 s
    for i in range(60):  # 6 s: the camera's sound on screen from 2 s to 4 s
        t = i / PRESET.fps
        feed.saw_picture(t, offset + t)
        while put < t + 0.2:  # sound arrives ahead of its picture, as from a camera
            feed.put(put, tone(put))
            put += AUDIO_FRAME / AUDIO_RATE
        output.sound.feed = feed if 20 <= i < 40 else None
        output.write_video(grey, offset + t)
    output.close()
    assert output.sound.played > 60 and output.sound.encoded > 60 and feed.dropped == feed.waits == 0
    packets = [packet for _, _, audio in segments(tmp_path) for packet in audio]
    assert all(b[0] == a[0] + a[1] for a, b in zip(packets, packets[1:])), "gap or overlap in the audio"
    loud = []
    for path in sorted(tmp_path.glob("seg*.ts")):
        with av.open(str(path)) as container:
            for frame in container.decode(audio=0):
                samples = array.array("f", bytes(frame.planes[0]))[:frame.samples]
                if max(abs(x) for x in samples) > 0.1:
                    loud.append(float(frame.time))
    assert loud and 1.9 <= min(loud) <= 2.4 and 3.6 <= max(loud) <= 4.1, (min(loud), max(loud))


@pytest.mark.parametrize("stream_format", list(STREAM_FORMATS))
def test_page_changes_cut_segments_and_the_playlist_stays_valid(tmp_path, stream_format):
    """Page loads at awkward moments, including a burst, through the real muxer: nothing is
    encoded before the first page, every cut segment ends with its new page, each segment starts
    with its only keyframe, and EXT-X-TARGETDURATION never drops below 1."""
    preset = get_preset("720p", stream_format)
    output = HlsOutput(tmp_path, preset, held=preset.stream.held_segments)
    cut = PageCut(preset.fps, preset.gop)
    colours = [(255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 0), (255, 0, 255), (0, 255, 255)]
    loads = [0.73, 2.46, 2.7, 2.95, 3.2, 5.05]  # nav n finishes loading at loads[n]
    pictures = [picture(c) for c in colours]
    blank = picture((255, 255, 255))
    cuts = []
    skipped = 0
    for i in range(int(7.5 * preset.fps)):
        now = 100 + i / preset.fps + 0.001
        nav = max(n for n, at in enumerate(loads) if n == 0 or now >= 100 + at - 0.2)
        loaded = [n for n, at in enumerate(loads) if now >= 100 + at]
        loaded_nav = max(loaded) if loaded else -1
        action = cut.decide(now, nav, loaded_nav, 100 + loads[loaded_nav] if loaded else 0.0)
        on_screen = pictures[loaded_nav] if loaded else blank
        if action is Action.SKIP:
            skipped += 1
            continue
        if output.write_video(on_screen, now, keyframe=action is Action.CUT) and action is Action.WRITE:
            cut.segment_started()
        if action is Action.CUT:
            cuts.append((nav, output.segments()))
            assert target_duration(tmp_path) >= 1
    output.close()
    # the frames before the first page was shown (at 0.73 s) and had settled were not encoded
    assert skipped == sum(1 for i in range(75) if i / preset.fps + 0.001 < loads[0] + SETTLE)
    # the held first picture, the format's first_hold s in whole segments, is listed one frame after the page
    assert [nav for nav, _ in cuts][0] == 0 and cuts[0][1] == len(preset.stream.held_segments)
    # navs 1-3 were replaced by newer ones before their pages were on screen: newest wins
    assert [nav for nav, _ in cuts] == [0, 4, 5]
    found = segments(tmp_path)
    by_name = {name: video for name, video, _ in found}
    for nav, listed in cuts:
        name = f"seg{listed - 1:05d}.ts"
        if name in by_name:  # (old ones are deleted as the playlist moves on)
            assert close_to(rgb_at(by_name[name][-1], 640, 360), colours[nav]), (nav, name)
    for name, video, _ in found:
        assert video[0].key_frame and not any(f.key_frame for f in video[1:]), name
        assert len(video) <= (preset.keyint if name == "seg00000.ts" else preset.gop), name  # (a held first one)


@pytest.mark.parametrize("stream_format", list(STREAM_FORMATS))
def test_rapid_page_changes_never_make_two_short_segments_in_a_row(tmp_path, stream_format):
    """A page every 0.3 s: each would end a segment of 3 frames; the playlist's target duration
    (longest segment, rounded) would drop to 0, so every other cut waits for a long segment."""
    preset = get_preset("720p", stream_format)
    output = HlsOutput(tmp_path, preset, held=preset.stream.held_segments)
    cut = PageCut(preset.fps, preset.gop)
    grey = picture((128, 128, 128))
    shown = []
    for i in range(60):
        now = 100 + i / preset.fps + 0.001
        nav = min(i // 3, 15)
        action = cut.decide(now, nav, nav, 100 + (nav * 3) / preset.fps - 0.15)
        if action is not Action.SKIP:
            if output.write_video(grey, now, keyframe=action is Action.CUT) and action is Action.WRITE:
                cut.segment_started()
        if action is Action.CUT:
            shown.append(nav)
            assert target_duration(tmp_path) >= 1
    output.close()
    assert len(shown) >= 5
    lengths = [len(video) for _, video, _ in segments(tmp_path)][:-1]  # the last one was cut by close()
    short = [n < cut.min_frames for n in lengths]
    assert not any(a and b for a, b in zip(short, short[1:])), lengths
