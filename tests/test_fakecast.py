"""The fake Cast device (tests/fakecast) driven by the real pychromecast: no mocks.

Everything stays on 127.0.0.1: the fake's TLS server, the HLS HTTP server, and mDNS on a Zeroconf
bound to the loopback interface.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import threading
import time

import pychromecast
import pytest
from pychromecast.controllers import heartbeat as pcc_heartbeat
from pychromecast.controllers.dashcast import DashCastController
from pychromecast.controllers.media import MediaStatusListener
from pychromecast.controllers.receiver import CastStatusListener
from pychromecast.socket_client import ConnectionStatusListener

from fakecast import (
    APP_DASHCAST,
    APP_MEDIA_RECEIVER,
    APP_YOUTUBE,
    FakeCastDevice,
    StaticHTTPServer,
    loopback_zeroconf,
    write_hls,
)
from fakecast import protocol as P

HLS = "application/vnd.apple.mpegurl"


# ---------------------------------------------------------------- leak check


def _socket_fds() -> set[str]:
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                fds.add(fd)
        except OSError:
            pass
    return fds


@pytest.fixture(autouse=True)
def no_leaks():
    """Every thread and socket a test opens must be gone when its fixtures are torn down."""
    threads = set(threading.enumerate())
    sockets = _socket_fds()
    yield
    deadline = time.monotonic() + 5
    while True:
        extra_threads = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        extra_sockets = _socket_fds() - sockets
        if not extra_threads and not extra_sockets:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"leaked threads {extra_threads} / socket fds {sorted(extra_sockets)}")
        time.sleep(0.02)


# ---------------------------------------------------------------- media and devices


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hls")
    write_hls(root / "live")  # H.264 High + AAC, 3 x 1 s TS segments, master.m3u8, no ENDLIST
    write_hls(root / "fmp4", segment_type="fmp4")
    write_hls(root / "noaudio", audio=False, codecs="avc1.64001e,mp4a.40.2")  # CODECS lie about audio
    (root / "garbage").mkdir()
    (root / "garbage" / "stream.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg000.ts\n"
    )
    (root / "garbage" / "seg000.ts").write_bytes(b"\x47not really a transport stream" * 200)
    return root


@pytest.fixture
def http(media_dir):
    with StaticHTTPServer(media_dir) as server:
        yield server


@pytest.fixture
def tv():
    with FakeCastDevice(name="Fake TV") as device:
        yield device


class Recorder(MediaStatusListener, CastStatusListener, ConnectionStatusListener):
    """Collects what pychromecast reports to its listeners (called from its worker thread)."""

    def __init__(self) -> None:
        self.media: list[tuple[str, str | None, int | None]] = []
        self.load_failed: list[tuple[int, int]] = []
        self.cast: list[tuple[str | None, str | None]] = []
        self.conn: list[str] = []

    def new_media_status(self, status) -> None:
        self.media.append((status.player_state, status.idle_reason, status.media_session_id))

    def load_media_failed(self, queue_item_id: int, error_code: int) -> None:
        self.load_failed.append((queue_item_id, error_code))

    def new_cast_status(self, status) -> None:
        self.cast.append((status.app_id, status.session_id))

    def new_connection_status(self, status) -> None:
        self.conn.append(status.status)

    def states(self) -> list[str]:
        return [s for s, _, _ in self.media]


def connect(tv: FakeCastDevice, rec: Recorder | None = None, **kwargs) -> pychromecast.Chromecast:
    cast = pychromecast.get_chromecast_from_host(tv.cast_info_tuple(), tries=None, retry_wait=0.2, timeout=5, **kwargs)
    if rec is not None:
        cast.media_controller.register_status_listener(rec)
        cast.register_status_listener(rec)
        cast.register_connection_listener(rec)
    cast.wait(timeout=5)
    # pychromecast sends CONNECT, GET_STATUS and PING together; wait() returns on the status while
    # the PONG is still arriving. A command written from this thread while its worker thread reads
    # that PONG races on the shared SSL object (see fakecast/README.md), so let the PONG land first.
    tv.wait_for(lambda: any(ns == P.NS_HEARTBEAT and p["type"] == "PONG" for _, ns, p in tv.sent))
    time.sleep(tv.latency + 0.02)
    return cast


@pytest.fixture
def rec():
    return Recorder()


@pytest.fixture
def cast(tv, rec):
    cc = connect(tv, rec)
    yield cc
    cc.disconnect(timeout=5)


class Reply:
    """callback_function for pychromecast commands: remembers (msg_sent, response)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.msg_sent: bool | None = None
        self.response: dict | None = None

    def __call__(self, msg_sent: bool, response: dict | None) -> None:
        self.msg_sent, self.response = msg_sent, response
        self.done.set()


def play(tv, cast, url, **kwargs) -> Reply:
    reply = Reply()
    cast.media_controller.play_media(url, HLS, stream_type="LIVE", callback_function=reply, **kwargs)
    return reply


def start_playing(tv, cast, rec, http) -> int:
    play(tv, cast, http.url("live/master.m3u8"))
    tv.wait_for(lambda: "PLAYING" in rec.states(), what="pychromecast sees PLAYING")
    return tv.media_session_id


# ---------------------------------------------------------------- connecting


def test_connect_status_and_volume(tv, cast):
    assert cast.status is not None and cast.status.volume_level == 1.0
    # pychromecast calls any device on a port other than 8009 a cast group, without asking it.
    assert cast.cast_type == "group"
    assert tv.connections == 1
    received = [(ns, p.get("type")) for ns, p in tv.messages]
    assert (P.NS_CONNECTION, "CONNECT") in received
    assert (P.NS_RECEIVER, "GET_STATUS") in received

    cast.set_volume(0.25)
    assert tv.volume["level"] == 0.25
    tv.wait_for(lambda: cast.status.volume_level == 0.25)


def test_preset_cast_type_skips_group_guess(tv):
    cc = pychromecast.Chromecast(cast_info=tv.cast_info(), tries=1, timeout=5)
    try:
        cc.wait(timeout=5)
        assert cc.cast_type == "cast"
        assert cc.is_idle and cc.app_id is None
    finally:
        cc.disconnect(timeout=5)


def test_unconnected_messages_are_dropped_and_replies_echo_request_id(tv):
    """Like a device, the fake only answers a sender that CONNECTed to the destination first."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((tv.host, tv.port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:

        def send(ns, payload, dst=P.PLATFORM_ID):
            tls.sendall(P.encode("sender-x", dst, ns, payload))

        def read(n):
            data = b""
            while len(data) < n:
                chunk = tls.recv(n - len(data))
                assert chunk, "fake closed the connection"
                data += chunk
            return data

        def recv():
            (size,) = struct.unpack(">I", read(4))
            return P.decode(read(size))

        send(P.NS_RECEIVER, {"type": "GET_STATUS", "requestId": 7})
        tv.wait_for(lambda: tv.dropped)
        assert tv.dropped[0][1]["requestId"] == 7

        send(P.NS_CONNECTION, {"type": "CONNECT"})
        send(P.NS_RECEIVER, {"type": "GET_STATUS", "requestId": 8})
        msg, payload = recv()
        assert msg.namespace == P.NS_RECEIVER and msg.destination_id == "sender-x"
        assert payload["type"] == "RECEIVER_STATUS" and payload["requestId"] == 8

        send(P.NS_HEARTBEAT, {"type": "PING"})
        msg, payload = recv()
        assert payload == {"type": "PONG"}


# ---------------------------------------------------------------- loading media


def test_play_live_hls(tv, cast, rec, http):
    reply = play(tv, cast, http.url("live/master.m3u8"), title="dashboard")
    tv.wait_for(lambda: tv.player_state == "PLAYING")
    tv.wait_for(lambda: cast.media_controller.status.player_state == "PLAYING")
    assert cast.app_id == APP_MEDIA_RECEIVER == tv.current_app

    (load,) = tv.loads
    assert load["media"]["contentId"] == http.url("live/master.m3u8")
    assert load["media"]["contentType"] == HLS
    assert load["media"]["streamType"] == "LIVE"
    assert load["media"]["metadata"]["title"] == "dashboard"
    assert load["sessionId"] == tv.session_id

    (check,) = tv.load_results
    assert check.ok and check.master and check.live and check.segment_format == "ts"
    assert (check.video_codec, check.profile, check.width, check.height) == ("h264", "High", 320, 240)
    assert check.has_audio and check.audio_codec == "aac"
    assert "/live/master.m3u8" in http.requests and "/live/stream.m3u8" in http.requests

    # The LOAD's own reply is the BUFFERING status, echoing its requestId; PLAYING follows.
    assert reply.done.wait(5) and reply.msg_sent
    assert reply.response["type"] == "MEDIA_STATUS"
    assert reply.response["requestId"] == load["requestId"]
    assert reply.response["status"][0]["playerState"] == "BUFFERING"
    states = rec.states()
    assert states.index("BUFFERING") < states.index("PLAYING")

    mc = cast.media_controller
    mc.pause()
    assert tv.player_state == "PAUSED"
    mc.play()
    assert tv.player_state == "PLAYING"
    mc.stop()
    assert (tv.player_state, tv.idle_reason) == ("IDLE", "CANCELLED")
    tv.wait_for(lambda: rec.media[-1][:2] == ("IDLE", "CANCELLED"))
    assert tv.dropped == []  # pychromecast always CONNECTs before it talks

    # pychromecast keeps the ended session's id and treats any reply as success: this PLAY is
    # refused by the receiver, yet mc.play() returns normally.
    assert mc.status.media_session_id == 1 and tv.media_session_id is None
    mc.play()
    last_media_reply = [p for _, ns, p in tv.sent if ns == P.NS_MEDIA][-1]
    assert (last_media_reply["type"], last_media_reply["reason"]) == ("INVALID_REQUEST", "INVALID_MEDIA_SESSION_ID")


def test_new_load_interrupts_the_old_session(tv, cast, rec, http):
    first = start_playing(tv, cast, rec, http)
    play(tv, cast, http.url("live/stream.m3u8"))
    tv.wait_for(lambda: ("IDLE", "INTERRUPTED", first) in rec.media)
    tv.wait_for(lambda: rec.media[-1][0] == "PLAYING" and rec.media[-1][2] == first + 1)


@pytest.mark.parametrize(
    ("path", "cors", "code"),
    [
        ("missing/master.m3u8", True, 311),  # HLS_NETWORK_MASTER_PLAYLIST (HTTP 404)
        ("garbage/stream.m3u8", True, 316),  # HLS_SEGMENT_PARSING (PyAV cannot decode the segment)
        ("noaudio/master.m3u8", True, 104),  # CODECS declare mp4a, the segment has no audio
        ("live/master.m3u8", False, 311),  # no Access-Control-Allow-Origin
    ],
)
def test_unplayable_load_fails(tv, cast, rec, http, path, cors, code):
    http.cors = cors
    reply = play(tv, cast, http.url(path))
    assert reply.done.wait(5)
    # pychromecast reports msg_sent=True for a LOAD_FAILED reply: callers must read the type.
    assert reply.msg_sent and reply.response["type"] == "LOAD_FAILED"
    assert reply.response["detailedErrorCode"] == code
    tv.wait_for(lambda: rec.load_failed == [(1, code)])  # (itemId, detailedErrorCode)
    tv.wait_for(lambda: rec.media and rec.media[-1][:2] == ("IDLE", "ERROR"))
    assert tv.player_state == "IDLE" and tv.idle_reason == "ERROR"
    assert not tv.load_results[-1].ok


def test_fmp4_needs_declaring(tv, cast, rec, http):
    reply = play(tv, cast, http.url("fmp4/master.m3u8"))
    tv.wait_for(lambda: tv.load_results)
    assert tv.load_results[-1].hangs
    tv.wait_for(lambda: rec.states()[-1:] == ["BUFFERING"])
    assert not reply.done.wait(0.3)  # the receiver never answers this LOAD

    reply = play(tv, cast, http.url("fmp4/master.m3u8"), media_info={"hlsVideoSegmentFormat": "fmp4"})
    tv.wait_for(lambda: rec.states()[-1:] == ["PLAYING"])
    assert tv.load_results[-1].ok and tv.load_results[-1].segment_format == "fmp4"


# ---------------------------------------------------------------- faults


def test_fail_next_load(tv, cast, rec, http):
    tv.fail_next_load(True)
    reply = play(tv, cast, http.url("live/master.m3u8"))
    assert reply.done.wait(5) and reply.response["type"] == "LOAD_FAILED"
    tv.wait_for(lambda: rec.load_failed)
    assert http.requests == []  # failed without fetching
    start_playing(tv, cast, rec, http)  # one-shot


def test_launch_error(tv, cast):
    tv.fail_next_launch("NOT_FOUND")
    with pytest.raises(pychromecast.RequestFailed):
        cast.start_app(APP_MEDIA_RECEIVER)
    assert tv.current_app is None
    cast.start_app(APP_MEDIA_RECEIVER)  # one-shot
    assert tv.current_app == APP_MEDIA_RECEIVER


@pytest.mark.parametrize("reason", ["CANCELLED", "INTERRUPTED"])
def test_stop_from_remote(tv, cast, rec, http, reason):
    session = start_playing(tv, cast, rec, http)
    assert tv.stop_from_remote(reason)
    tv.wait_for(lambda: rec.media[-1] == ("IDLE", reason, session))
    assert cast.media_controller.status.idle_reason == reason
    assert cast.app_id == APP_MEDIA_RECEIVER  # the app stays; only the media session ended
    assert not tv.stop_from_remote(reason)


def test_switch_app(tv, cast, rec, http):
    start_playing(tv, cast, rec, http)
    old_session = tv.session_id
    new_session = tv.switch_app()
    assert new_session != old_session and tv.current_app == APP_YOUTUBE
    tv.wait_for(lambda: cast.app_id == APP_YOUTUBE and cast.status.session_id == new_session)
    assert cast.app_display_name == "YouTube"
    # the old transport was closed towards the sender; pychromecast dropped the media status
    assert any(ns == P.NS_CONNECTION and p["type"] == "CLOSE" for _, ns, p in tv.sent)
    tv.wait_for(lambda: cast.media_controller.status.media_session_id is None)
    assert tv.player_state == "IDLE"


def test_quit_app(tv, cast, rec, http):
    start_playing(tv, cast, rec, http)
    cast.quit_app()
    assert tv.current_app is None
    tv.wait_for(lambda: cast.app_id is None)


@pytest.mark.parametrize("graceful", [False, True])
def test_drop_connections_then_reconnect(tv, cast, rec, http, graceful):
    session = start_playing(tv, cast, rec, http)
    assert tv.drop_connections(graceful=graceful) == 1
    tv.wait_for(lambda: "LOST" in rec.conn and rec.conn[-1] == "CONNECTED", what="pychromecast reconnects")
    tv.wait_for(lambda: tv.total_connections == 2)
    # The device kept playing; after the reconnect pychromecast re-reads the same session.
    tv.wait_for(lambda: cast.media_controller.status.player_state == "PLAYING")
    assert cast.media_controller.status.media_session_id == session
    assert len(tv.loads) == 1  # pychromecast does not re-send the LOAD itself


def test_device_off_then_back(tv, cast, rec, http):
    session = start_playing(tv, cast, rec, http)
    assert tv.refuse_connections(True) == 1  # switched off: the open connection dies with it
    tv.wait_for(lambda: rec.conn.count("FAILED") >= 2, what="reconnect attempts refused")
    tv.refuse_connections(False)  # same port again
    # pychromecast's retry delay doubles per failure (retry_wait=0.2 here; capped at 300 s)
    tv.wait_for(lambda: rec.conn[-1] == "CONNECTED", timeout=10)
    tv.wait_for(lambda: cast.media_controller.status.media_session_id == session)


def test_heartbeat_timeout_reconnects(tv, rec, monkeypatch):
    # pychromecast declares a connection dead 20 s after the last PONG; shrink that for the test.
    monkeypatch.setattr(pcc_heartbeat, "HB_PING_TIME", 0.2)
    monkeypatch.setattr(pcc_heartbeat, "HB_PONG_TIME", 0.2)
    monkeypatch.setattr(pychromecast.socket_client, "SELECT_TIMEOUT", 0.05)
    cc = connect(tv, rec)
    try:
        def pings():
            return [p for ns, p in tv.messages if ns == P.NS_HEARTBEAT and p.get("type") == "PING"]
        tv.wait_for(lambda: len(pings()) >= 2)
        tv.stop_heartbeat(True)
        tv.wait_for(lambda: "LOST" in rec.conn, timeout=5, what="heartbeat timeout")
        tv.stop_heartbeat(False)
        tv.wait_for(lambda: rec.conn[-1] == "CONNECTED" and cc.status is not None, timeout=5)
        # the client may finish the TLS handshake before the fake's accept callback runs
        tv.wait_for(lambda: tv.total_connections >= 2)
    finally:
        cc.disconnect(timeout=5)


def test_dashcast_load_is_recorded(tv, cast):
    dash = DashCastController()
    cast.register_handler(dash)
    dash.load_url("http://127.0.0.1:9/dashboard", reload_seconds=0)
    tv.wait_for(lambda: tv.dashcast_loads)
    assert tv.current_app == APP_DASHCAST
    assert tv.dashcast_loads[0]["url"] == "http://127.0.0.1:9/dashboard"
    assert tv.dashcast_loads[0]["sessionId"] == tv.session_id


# ---------------------------------------------------------------- discovery


def test_mdns_discovery_on_loopback():
    # A unique name: every process advertising on this machine's loopback is visible to the others.
    with FakeCastDevice(name=f"Fake TV {os.getpid()}-{time.monotonic_ns()}") as tv:
        tv.advertise()
        zconf = loopback_zeroconf()
        casts, browser = pychromecast.get_listed_chromecasts(
            uuids=[tv.uuid], zeroconf_instance=zconf, discovery_timeout=5, tries=1, timeout=5
        )
        try:
            assert [c.uuid for c in casts] == [tv.uuid]
            (cc,) = casts
            assert (cc.cast_info.host, cc.cast_info.port) == (tv.host, tv.port)
            assert (cc.name, cc.model_name) == (tv.name, tv.model)
            assert cc.cast_type == "group"  # same port != 8009 rule in discovery.py
            cc.wait(timeout=5)  # connects via the mDNS service name, resolved through zconf
            assert tv.connections == 1
        finally:
            for cc in casts:
                if cc.socket_client.is_alive():  # disconnect() of a never-started cast raises
                    cc.disconnect(timeout=5)
            browser.stop_discovery()  # also closes zconf


# ---------------------------------------------------------------- a shared TV: other apps, standby, volume


def test_other_apps_the_idle_screen_and_standby_show_in_the_receiver_status(tv, cast):
    from fakecast import APP_BACKDROP, APP_NETFLIX

    tv.switch_app(APP_NETFLIX, "Netflix")
    tv.wait_for(lambda: cast.app_id == APP_NETFLIX)
    assert cast.app_display_name == "Netflix" and P.NS_MEDIA not in cast.status.namespaces  # no media status
    assert tv.quit_app(idle_screen=True)
    tv.wait_for(lambda: cast.app_id == APP_BACKDROP, what="the idle screen")
    assert cast.status.is_stand_by is False and cast.status.is_active_input is True
    tv.set_standby(True, active_input=False)
    tv.wait_for(lambda: cast.status.is_stand_by is True and cast.status.is_active_input is False)
    assert tv.quit_app() and not tv.quit_app()  # the idle screen quits; then nothing runs
    tv.wait_for(lambda: cast.app_id is None)

    cast.start_app(APP_MEDIA_RECEIVER)  # a LAUNCH wakes a CEC TV and takes its input
    tv.wait_for(lambda: cast.status.is_stand_by is False and cast.status.is_active_input is True)
    assert not tv.standby
    tv.set_standby(True, cec=False)
    cast.start_app(APP_YOUTUBE)
    tv.wait_for(lambda: cast.app_id == APP_YOUTUBE)
    assert tv.standby  # without CEC the TV stays off


def test_volume_from_the_remote_and_from_a_sender_is_recorded(tv, cast):
    tv.set_volume(level=0.4, muted=True)
    tv.wait_for(lambda: cast.status.volume_level == 0.4 and cast.status.volume_muted)
    cast.set_volume_muted(False)
    tv.wait_for(lambda: not tv.volume["muted"])
    assert tv.volume_log == [{"muted": False}] and tv.volume["level"] == 0.4
