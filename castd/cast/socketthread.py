"""Make pychromecast touch its TLS socket from one thread only.

pychromecast 14 writes to its one SSLSocket from the caller's thread while its own worker thread reads
from it, answers PINGs on it and replaces it on reconnect, with no lock. Under a reply race that
corrupts the TLS stream and has segfaulted the process (tests/fakecast/README.md, quirk 2). Here every
send made from another thread is handed to pychromecast's worker thread, which runs it between two of
its own reads: the socket then has exactly one user. A send also queues behind pychromecast's own
reconnect, so it can no longer overtake the CONNECT that follows a reconnect (quirk 3).

This patches one SocketClient instance (its send_message, _run_once and run attributes), written against
pychromecast 14.0; the cast worker still runs in its own process in case something else goes wrong.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from pychromecast.error import NotConnected, PyChromecastStopped
from pychromecast.socket_client import SocketClient

SEND_TIMEOUT = 15.0  # longest wait for the socket thread to take a send (it may be reconnecting)


class _Job:
    __slots__ = ("args", "kwargs", "done", "error")

    def __init__(self, args: tuple, kwargs: dict) -> None:
        self.args, self.kwargs = args, kwargs
        self.done = threading.Event()
        self.error: BaseException | None = None


class OneThreadSends:
    """Route `send_message` calls from other threads through the SocketClient's own thread."""

    def __init__(self, client: SocketClient, timeout: float = SEND_TIMEOUT) -> None:
        self.client = client
        self.timeout = timeout
        self._jobs: deque[_Job] = deque()
        self._lock = threading.Lock()
        self._closed = False
        self._send = client.send_message
        self._run_once = client._run_once
        self._run = client.run
        client.send_message = self.send_message  # type: ignore[method-assign]
        client._run_once = self.run_once  # type: ignore[method-assign]
        client.run = self.run  # type: ignore[method-assign]

    def send_message(self, *args: Any, **kwargs: Any) -> None:
        client = self.client
        if threading.current_thread() is client:
            return self._send(*args, **kwargs)
        job = _Job(args, kwargs)
        with self._lock:
            if self._closed or not client.is_alive():
                stopped = True
            else:
                stopped = False
                self._jobs.append(job)
        if stopped:
            callback = kwargs.get("callback_function")
            if callback:
                callback(False, None)
            raise PyChromecastStopped("the Cast connection thread is not running")
        try:
            client.socketpair[1].send(b"x")  # wake its select()
        except OSError:
            pass
        if not job.done.wait(self.timeout):
            with self._lock:
                taken = job not in self._jobs
                if not taken:
                    self._jobs.remove(job)
            if not taken:
                callback = kwargs.get("callback_function")
                if callback:
                    callback(False, None)
                raise NotConnected(f"the Cast connection thread did not take the message within {self.timeout}s")
            if not job.done.wait(self.timeout):
                raise NotConnected("the Cast connection thread is stuck sending")
        if job.error is not None:
            raise job.error
        return None

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    return
                job = self._jobs.popleft()
            try:
                self._send(*job.args, **job.kwargs)
            except BaseException as exc:  # handed to the caller
                job.error = exc
            job.done.set()

    def run_once(self) -> int:
        self._drain()
        return self._run_once()

    def run(self) -> None:
        try:
            self._run()
        finally:
            with self._lock:
                self._closed = True
                jobs = list(self._jobs)
                self._jobs.clear()
            for job in jobs:
                callback = job.kwargs.get("callback_function")
                if callback:
                    callback(False, None)
                job.error = PyChromecastStopped("the Cast connection closed")
                job.done.set()
