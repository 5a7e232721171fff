"""A test camera: GStreamer's RTSP server (Debian's gir1.2-gst-rtsp-server-1.0) serving H.264.

Run with the SYSTEM python3 (/usr/bin/python3: it has gi), never the venv's. The picture is one solid
colour (--color RRGGBB) with a strip along the bottom whose grey level encodes the time it was
made (TIME_STEPS levels, one per 1/TIME_RATE s, cycling), so a test can tell the camera's colour
and that its picture moves. The same picture with sound is at /aac (AAC-LC 48 kHz stereo, as castd's
track: passed through) and /alaw (G.711 A-law 8 kHz mono, most IP cameras' default: transcoded): a
tone whose pitch steps with the strip (tone_hz(level)), so a test can tell the sound is the camera's
and measure how far it is from its picture. AAC needs voaacenc (gstreamer1.0-plugins-bad). Basic auth
with --user/--password. Listens on 127.0.0.1, on --port (0: a free one), prints "port N" on stdout
once it serves, and runs until SIGTERM or its stdin closes.

The test side (RtspCamera) is in tests/helpers.py; the tests import the constants (gi is imported in
main() only).
"""

import argparse
import signal
import sys
import threading
import time

TIME_STEPS = 8
TIME_RATE = 4.0
TONE_BASE, TONE_STEP = 500.0, 250.0  # Hz: the tone of the strip's step n is TONE_BASE + n * TONE_STEP
AUDIO = {  # mount -> the encoder and payloader of its sound
    "/aac": "audio/x-raw,rate=48000,channels=2 ! voaacenc bitrate=64000 ! rtpmp4gpay name=pay1 pt=97",
    "/alaw": "audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1",
}


def step_now() -> int:
    return int(time.time() * TIME_RATE) % TIME_STEPS


def tone_hz(step: int) -> float:
    return TONE_BASE + step * TONE_STEP


def main() -> int:
    import gi  # here, so the tests (in the venv, without gi) can import this module's constants

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--color", default="ff0000")
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--file", help="serve this MP4 (H.264) instead, paced in real time, looped per client "
                                       "(bench/cameras.py: a 1080p camera; h264parse is in gstreamer1.0-plugins-bad)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    rgb = bytes.fromhex(args.color)
    Gst.init(None)
    loop = GLib.MainLoop()

    strip = height // 6
    body = rgb * (width * (height - strip))

    def picture() -> bytes:
        level = step_now() * (255 // (TIME_STEPS - 1))
        return body + bytes((level, level, level)) * (width * strip)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    video = (
        f"appsrc name=src is-live=true do-timestamp=true format=time "
        f"caps=video/x-raw,format=RGB,width={width},height={height},framerate={args.fps}/1 "
        f"! videoconvert ! video/x-raw,format=I420 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} bframes=0 "
        f"! video/x-h264,profile=high ! rtph264pay name=pay0 pt=96 config-interval=1")
    if args.file:
        video = f"filesrc location={args.file} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1"
    factories = {args.path: f"( {video} )"}
    if not args.file:
        for mount, sound in AUDIO.items():
            # audiotestsrc can seek, so the server seeks at PLAY (FFmpeg asks for npt=0-): appsrc must accept it
            seekable = video.replace("appsrc ", "appsrc stream-type=seekable ")
            factories[mount] = (f"( {seekable} audiotestsrc name=tone is-live=true samplesperbuffer=480 "
                                f"! audioconvert ! audioresample ! {sound} )")

    def configure(_factory, media) -> None:
        element = media.get_element()
        src = element.get_by_name("src")
        if src is None:  # a file
            return

        def need_data(appsrc, _length) -> None:
            time.sleep(1 / args.fps)  # live pacing: one picture per frame interval, made when it is stamped
            buffer = Gst.Buffer.new_wrapped(picture())
            buffer.duration = Gst.SECOND // args.fps
            appsrc.emit("push-buffer", buffer)

        src.connect("need-data", need_data)
        src.connect("seek-data", lambda *_: True)  # (only asked on the mounts with sound)
        tone = element.get_by_name("tone")
        if tone is None:
            return
        tone.set_property("freq", tone_hz(step_now()))
        playing = {"on": True}
        media.connect("unprepared", lambda *_: playing.update(on=False))

        def follow_the_strip() -> None:  # the pitch steps when the strip does (10 ms buffers: within ~10 ms)
            while playing["on"]:
                tone.set_property("freq", tone_hz(step_now()))
                time.sleep(0.002)

        threading.Thread(target=follow_the_strip, daemon=True).start()

    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
    for mount, launch in factories.items():
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(True)
        factory.connect("media-configure", configure)
        if args.user:
            role = Gst.Structure.from_string("viewer, media.factory.access=(boolean)true, "
                                             "media.factory.construct=(boolean)true")[0]
            factory.add_role_from_structure(role)
        server.get_mount_points().add_factory(mount, factory)
    server.attach(None)
    print(f"port {server.get_bound_port()}", flush=True)

    def quit_on_eof() -> None:  # the test process died: do not outlive it
        sys.stdin.read()
        GLib.idle_add(loop.quit)

    threading.Thread(target=quit_on_eof, daemon=True).start()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: (loop.quit(), False)[1])
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
