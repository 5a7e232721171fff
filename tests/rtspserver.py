"""A test camera: GStreamer's RTSP server (Debian's gir1.2-gst-rtsp-server-1.0) serving H.264.

Run with the SYSTEM python3 (/usr/bin/python3: it has gi), never the venv's. The picture is one solid
colour (--color RRGGBB) with a strip along the bottom whose grey level encodes the time it was
made (TIME_STEPS levels, one per 1/TIME_RATE s, cycling), so a test can tell the camera's colour
and that its picture moves. Basic auth with --user/--password. Listens on 127.0.0.1, on --port
(0: a free one), prints "port N" on stdout once it serves, and runs until SIGTERM or its stdin closes.

The test side (RtspCamera) is in tests/helpers.py.
"""

import argparse
import signal
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

TIME_STEPS = 8
TIME_RATE = 4.0


def main() -> int:
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
        level = int(time.time() * TIME_RATE) % TIME_STEPS * (255 // (TIME_STEPS - 1))
        return body + bytes((level, level, level)) * (width * strip)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    launch = (
        f"( appsrc name=src is-live=true do-timestamp=true format=time "
        f"caps=video/x-raw,format=RGB,width={width},height={height},framerate={args.fps}/1 "
        f"! videoconvert ! video/x-raw,format=I420 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} bframes=0 "
        f"! video/x-h264,profile=high ! rtph264pay name=pay0 pt=96 config-interval=1 )")
    if args.file:
        launch = (f"( filesrc location={args.file} ! qtdemux ! h264parse "
                  f"! rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_launch(launch)
    factory.set_shared(True)

    def configure(_factory, media) -> None:
        src = media.get_element().get_by_name("src")
        if src is None:  # a file
            return
        state = {"n": 0}

        def need_data(appsrc, _length) -> None:
            buffer = Gst.Buffer.new_wrapped(picture())
            buffer.duration = Gst.SECOND // args.fps
            state["n"] += 1
            time.sleep(1 / args.fps)  # live pacing: one picture per frame interval
            appsrc.emit("push-buffer", buffer)

        src.connect("need-data", need_data)

    factory.connect("media-configure", configure)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        role = Gst.Structure.from_string("viewer, media.factory.access=(boolean)true, "
                                         "media.factory.construct=(boolean)true")[0]
        factory.add_role_from_structure(role)
    server.get_mount_points().add_factory(args.path, factory)
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
