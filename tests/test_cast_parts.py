"""castd's cast parts on their own: device specs, the stream address a TV gets, and the one-thread rule for
pychromecast's socket (against a fake device on loopback)."""

from __future__ import annotations

import socket
import threading

import pytest

from castd.cast.connection import CastConnection
from castd.cast.devices import Resolved, host_ip
from castd.cast.media import NS_RECEIVER
from castd.specs import check_specs, parse_spec
from castd.cast.streamurl import Unreachable, stream_base
from castd.config import Config
from fakecast import FakeCastDevice


@pytest.mark.parametrize("text, kind, host, port", [
    ("Living Room TV", "name", None, 8009),
    ("Kitchen", "name", None, 8009),
    ("TV: upstairs", "name", None, 8009),
    ("192.168.1.20", "host", "192.168.1.20", 8009),
    ("192.168.1.20:8010", "host", "192.168.1.20", 8010),
    ("[fe80::1]:8009", "host", "fe80::1", 8009),
    ("fe80::1", "host", "fe80::1", 8009),
    ("tv.lan", "host", "tv.lan", 8009),
    ("chromecast:8009", "host", "chromecast", 8009),
    ("3a7c2f3e-1234-5678-9abc-def012345678", "uuid", None, 8009),
    ("3a7c2f3e123456789abcdef012345678", "uuid", None, 8009),
])
def test_spec_kinds(text, kind, host, port):
    spec = parse_spec(text)
    assert (spec.kind, spec.host, spec.port) == (kind, host, port)


def test_spec_problems():
    for bad in ("", "   ", "x" * 201, "10.0.0.1:0", "10.0.0.1:70000"):
        with pytest.raises(ValueError):
            parse_spec(bad)
    assert check_specs(["TV", "tv", " TV ", "", "10.0.0.1"]) == ["TV", "10.0.0.1"]  # case-blind duplicates once
    with pytest.raises(ValueError, match="at most 8"):
        check_specs([f"tv{i}" for i in range(9)])


def test_stream_base():
    # stream_host wins, with or without a port
    assert stream_base(Config(stream_host="castd.lan", port=8765), "10.0.0.9") == "http://castd.lan:8765"
    assert stream_base(Config(stream_host="castd.lan:9000"), "10.0.0.9") == "http://castd.lan:9000"
    assert stream_base(Config(stream_host="[fd00::5]:9000"), "fd00::9") == "http://[fd00::5]:9000"
    assert stream_base(Config(stream_host="[fd00::5]", port=8765), "fd00::9") == "http://[fd00::5]:8765"
    # a device on loopback (the tests' fake) is right to get 127.0.0.1
    assert stream_base(Config(port=8765), "127.0.0.1") == "http://127.0.0.1:8765"
    # a device elsewhere never gets 127.0.0.1: castd listening on loopback only cannot serve it
    with pytest.raises(Unreachable):
        stream_base(Config(host="127.0.0.1"), "192.0.2.7")  # TEST-NET-1; a UDP connect() sends nothing


def test_every_send_runs_on_pychromecasts_socket_thread():
    """The race that corrupted pychromecast's TLS stream needs two threads on the socket: castd leaves one."""
    with FakeCastDevice(name="one-thread TV") as tv:
        conn = CastConnection(Resolved("tv", tv.host, tv.port, name="tv"), connect_timeout=5)
        threads = []
        original = conn.sends._send  # pychromecast's own send_message, which OneThreadSends calls

        def recording(*args, **kwargs):
            threads.append(threading.current_thread())
            return original(*args, **kwargs)

        conn.sends._send = recording
        try:
            conn.start()
            assert conn.wait_connected(5, lambda: False)
            for _ in range(20):  # replies race with the next send, as in the crash report
                status = conn.receiver_status(5)
                assert "volume" in status
            reply = conn.request(NS_RECEIVER, {"type": "LAUNCH", "appId": "CC1AD845"}, app=False, timeout=5)
            assert reply["type"] == "RECEIVER_STATUS" and tv.current_app == "CC1AD845"
        finally:
            conn.close()
        assert len(threads) >= 21 and set(threads) == {conn.client}
        assert tv.dropped == []  # and nothing overtook pychromecast's own CONNECT


def test_a_name_listing_ipv6_first_resolves_to_its_ipv4_address(monkeypatch):
    """Debian 13's /etc/hosts lists ::1 for localhost before 127.0.0.1 (getaddrinfo's order there): a TV named
    `localhost:PORT` was another TV than `127.0.0.1:PORT`, and its connect to ::1 failed."""
    listed = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", 0, 0, 0)),
              (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: list(listed))
    assert host_ip("localhost") == "127.0.0.1"
    listed.pop()  # a name with only an IPv6 address keeps it
    assert host_ip("localhost") == "::1"
