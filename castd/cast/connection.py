"""One pychromecast connection to one device, used by one link thread.

What castd needs from pychromecast is small: a TLS Cast channel that answers heartbeats, sends a
request and hands back the reply with the same requestId, and passes on every receiver and media
message. Commands are sent raw (castd builds them with explicit sessionId / mediaSessionId) and every
reply is read by its `type`: pychromecast counts LOAD_FAILED and INVALID_REQUEST replies as success.

pychromecast is told to try each connection once (tries=1). Its own retry delay doubles up to 300 s;
castd paces its reconnects itself (castd/cast/link.py), with a new connection object each time.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from typing import Callable

import pychromecast
from pychromecast.controllers import BaseController
from pychromecast.error import PyChromecastError
from pychromecast.socket_client import (CONNECTION_STATUS_CONNECTED, CONNECTION_STATUS_DISCONNECTED,
                                        CONNECTION_STATUS_FAILED, ConnectionStatusListener)

from castd.cast.devices import Resolved
from castd.cast.media import NS_MEDIA, NS_RECEIVER
from castd.cast.socketthread import OneThreadSends

POLL = 0.05


class CastError(Exception):
    """A Cast command or connection failed. `reconnect`: the connection itself is suspect."""

    def __init__(self, message: str, *, reconnect: bool = False) -> None:
        super().__init__(message)
        self.reconnect = reconnect


class Interrupted(Exception):
    """The link has something more urgent to do (a new plan, stop, quit)."""


class _Observer(BaseController):
    """Passes every message of one namespace to the link (it handles nothing itself)."""

    def __init__(self, namespace: str, inbox: queue.Queue) -> None:
        super().__init__(namespace, target_platform=namespace == NS_RECEIVER)
        self._inbox = inbox

    def receive_message(self, _message, data: dict) -> bool:
        self._inbox.put((self.namespace, data))
        return False  # pychromecast's own controllers still see it


class _ConnectionWatch(ConnectionStatusListener):
    def __init__(self, owner: "CastConnection") -> None:
        self.owner = owner

    def new_connection_status(self, status) -> None:
        self.owner._on_status(status.status)


def probe_error(host: str, port: int, timeout: float = 2.0) -> str | None:
    """Why a plain TCP connection to host:port fails (pychromecast does not say), or None if it works."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


class CastConnection:
    def __init__(self, device: Resolved, connect_timeout: float) -> None:
        self.device = device
        self.connect_timeout = connect_timeout
        self.inbox: queue.Queue[tuple[str, dict]] = queue.Queue()
        self._cond = threading.Condition()
        self.status = "NEW"  # pychromecast's last connection status
        self.generation = 0  # +1 on every CONNECTED: a reconnect means "read the device's state again"
        self.cc = pychromecast.Chromecast(device.cast_info(), tries=1, timeout=connect_timeout, retry_wait=0.5)
        self.client = self.cc.socket_client
        self.sends = OneThreadSends(self.client, timeout=connect_timeout + 2)
        for namespace in (NS_RECEIVER, NS_MEDIA):
            self.cc.register_handler(_Observer(namespace, self.inbox))
        self.cc.register_connection_listener(_ConnectionWatch(self))
        self._started = False
        self._closed = False

    @property
    def label(self) -> str:
        return f"{self.device.host}:{self.device.port}"

    def _on_status(self, status: str) -> None:
        with self._cond:
            self.status = status
            if status == CONNECTION_STATUS_CONNECTED:
                self.generation += 1
            self._cond.notify_all()

    def start(self) -> None:
        self._started = True
        self.client.start()

    def alive(self) -> bool:
        """False once pychromecast has given up on this connection (make a new one)."""
        return not self._closed and self._started and self.client.is_alive() and not self.client.stop.is_set()

    def connected(self) -> bool:
        return self.alive() and self.status == CONNECTION_STATUS_CONNECTED

    def wait_connected(self, timeout: float, interrupted: Callable[[], bool]) -> bool:
        """Wait until connected (True) or pychromecast gave up / the time ran out (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self.connected():
                    return True
                if not self.alive() or self.status in (CONNECTION_STATUS_DISCONNECTED,) or \
                        time.monotonic() >= deadline:
                    return False
                if interrupted():
                    raise Interrupted()
                self._cond.wait(POLL)

    def failure(self) -> str:
        """A readable reason for a connection that did not come up."""
        error = probe_error(self.device.host, self.device.port)
        if error:
            return f"cannot connect to {self.label}: {error}"
        if self.status == CONNECTION_STATUS_FAILED:
            return f"cannot connect to {self.label}: the TLS handshake failed"
        return f"no Cast connection to {self.label} within {self.connect_timeout:g}s"

    # ---- commands ------------------------------------------------------------------------
    def request(self, namespace: str, payload: dict, *, app: bool, timeout: float,
                interrupted: Callable[[], bool] = lambda: False) -> dict:
        """Send one command and return the device's reply (any type: the caller reads `type`).

        The reply also passed through the inbox; it and everything before it are dropped from there."""
        what = payload.get("type", namespace.rsplit(".", 1)[-1])
        done = threading.Event()
        box: dict = {}

        def callback(sent: bool, response: dict | None) -> None:
            box["sent"], box["response"] = sent, response
            done.set()

        self._send(namespace, payload, app=app, callback=callback, what=what)
        deadline = time.monotonic() + timeout
        while not done.wait(POLL):
            if time.monotonic() >= deadline:
                raise CastError(f"no answer to {what} within {timeout:g}s", reconnect=True)
            if interrupted():
                raise Interrupted()
        if not box["sent"] or box["response"] is None:
            raise CastError(f"{what} was lost: the connection to {self.label} dropped", reconnect=True)
        self.drain_through(box["response"])  # what is left in the inbox is newer than this answer
        return box["response"]

    def send(self, namespace: str, payload: dict, *, app: bool) -> None:
        """Send a message that gets no reply (DashCast's load)."""
        self._send(namespace, payload, app=app, callback=None, what=payload.get("type", "message"))

    def _send(self, namespace: str, payload: dict, *, app: bool, callback, what: str) -> None:
        try:
            if app:
                self.client.send_app_message(namespace, dict(payload), callback_function=callback)
            else:
                self.client.send_platform_message(namespace, dict(payload), callback_function=callback)
        except (PyChromecastError, OSError) as exc:
            raise CastError(f"could not send {what} to {self.label}: {exc}", reconnect=True) from None

    def drain_through(self, reply: dict) -> None:
        """Forget every message up to and including `reply`: older news than the answer just read."""
        while True:
            try:
                _, data = self.inbox.get_nowait()
            except queue.Empty:
                return
            if data is reply:
                return

    def receiver_status(self, timeout: float, interrupted: Callable[[], bool] = lambda: False) -> dict:
        reply = self.request(NS_RECEIVER, {"type": "GET_STATUS"}, app=False, timeout=timeout,
                             interrupted=interrupted)
        if reply.get("type") != "RECEIVER_STATUS":
            raise CastError(f"GET_STATUS answered with {reply.get('type')}")
        return reply.get("status") or {}

    def close(self, timeout: float = 2.0) -> None:
        """End pychromecast's thread and close every socket it opened (it leaks some when its first
        connection fails)."""
        if self._closed:
            return
        self._closed = True
        client = self.client
        client.stop.set()
        try:
            client.socketpair[1].send(b"x")
        except OSError:
            pass
        if self._started:
            client.join(timeout)
        if client.is_alive():
            return  # it closes its own sockets when it ends
        for sock in (client.socket, *client.socketpair):
            try:
                if sock is not None:
                    sock.close()
            except OSError:
                pass
        try:
            client.selector.close()
        except (OSError, ValueError, RuntimeError):
            pass
