"""A jittery link between the player and castd, for bench.glass `--link jitter` (issue 19's second link).

Why a proxy and not `tc netem`: this machine's kernel has no netem qdisc (`tc qdisc add dev lo root netem
delay 40ms` answers "Specified qdisc kind is unknown"), and a network namespace without netem would be just
another loopback. So `JitterLink` is a TCP proxy on 127.0.0.1 that the player is pointed at instead of
castd (castd's playlists name segments and the media playlist by relative URIs, so every request of the
stream goes through it once the master playlist's URL does).

What it does, per TCP connection and per direction, on every chunk it reads (what one recv returns, up
to 64 KiB: a request, a playlist, a part of a segment):
- delays it by DELAY +- JITTER (uniform: 40 +- 30 ms one way, so a request and its answer take 20-140 ms,
  a Wi-Fi link in a busy home rather than a quiet cable);
- holds 1 chunk in 100 (LOSS) another 200-400 ms, the time TCP takes to notice a lost packet and resend it
  (a retransmission timeout of ~200 ms, Linux's minimum, plus the resend);
- keeps byte order: a chunk leaves no earlier than the one before it (TCP delivers in order, so a held
  chunk holds everything behind it on its connection: head-of-line blocking, as a real loss does).
What it does not model: a bandwidth limit or a queue that grows with load (chunks are delayed, never
slowed), loss of single packets within a chunk (a whole chunk waits), TCP's slow start and its congestion
window after a loss, and connection setup (the handshake to the proxy is on loopback: only the first
request's chunk pays the delay). Chromium keeps its connections alive, so setup is rare anyway.

The delays are drawn from a seeded random generator (seed per link), so two runs draw the same sequence
for the same traffic.

It also notes, for every request with a blocking reload's `_HLS_msn` (sent by Shaka to a server that
declares CAN-BLOCK-RELOAD: castd's hls-fast-block, tried and removed, bench/README.md), how
long castd took to begin its answer (`reloads`: seconds from the request leaving the proxy to the first
byte back, and the status): a request castd held waited there; the others took milliseconds.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

DELAY = 0.040  # seconds, one way, per chunk
JITTER = 0.030  # +- seconds around DELAY (uniform)
LOSS = 0.01  # share of chunks held as a retransmission would hold them
LOSS_HOLD = (0.2, 0.4)  # seconds such a chunk waits on top of its delay
CHUNK = 65536


class JitterLink:
    """One proxy to one upstream (host, port), run by an asyncio loop in a thread of its own.

    Invariant: every connection it accepted is closed, both ways, by `close()`."""

    def __init__(self, upstream_host: str, upstream_port: int, seed: int = 19, delay: float = DELAY,
                 jitter: float = JITTER, loss: float = LOSS) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay, self.jitter, self.loss = delay, jitter, loss
        self.random = random.Random(seed)
        self.chunks = 0
        self.held = 0  # chunks held as a loss
        self.reloads: list[tuple[float, int]] = []  # (seconds castd took, HTTP status) per `_HLS_msn` request
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), name="jitterlink", daemon=True)
        self._thread.start()
        if not started.wait(10) or self._server is None:
            raise RuntimeError("the jitter proxy did not start")
        self.port: int = self._server.sockets[0].getsockname()[1]

    def url(self, url: str) -> str:
        """`url` (on the upstream) as the player reaches it through this link."""
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.port}"))

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def listen() -> None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

        try:
            self._loop.run_until_complete(listen())
        finally:
            started.set()
        self._loop.run_forever()

    def _wait(self) -> float:
        """One chunk's extra time on the link: the delay with jitter, and sometimes a loss's hold."""
        self.chunks += 1
        wait = self.delay + self.random.uniform(-self.jitter, self.jitter)
        if self.random.random() < self.loss:
            self.held += 1
            wait += self.random.uniform(*LOSS_HOLD)
        return max(0.0, wait)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, up_writer}
        asked: list[float] = []  # when a `_HLS_msn` request left for castd (HTTP/1.1: answers come in order)

        def sent(data: bytes) -> None:
            if b"_HLS_msn=" in data:
                asked.append(time.monotonic())

        def answered(data: bytes) -> None:
            if asked and data.startswith(b"HTTP/1."):
                self.reloads.append((time.monotonic() - asked.pop(0), int(data[9:12])))

        try:
            await asyncio.gather(self._pipe(client_reader, up_writer, on_sent=sent),
                                 self._pipe(up_reader, client_writer, on_read=answered))
        except asyncio.CancelledError:  # close(): the task ends here (asyncio logs a cancelled connection task)
            pass
        finally:
            for writer in (client_writer, up_writer):
                writer.close()
                self._writers.discard(writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    on_read: Callable[[bytes], None] | None = None,
                    on_sent: Callable[[bytes], None] | None = None) -> None:
        """One direction: read chunks as they come, deliver each at its time, in order; the callbacks see
        each chunk when it is read and when it is delivered."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()
                if on_sent is not None:
                    on_sent(data)
            if writer.can_write_eof():
                writer.write_eof()

        sender = asyncio.create_task(deliver())
        last_due = 0.0
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if on_read is not None:
                    on_read(data)
                last_due = max(last_due, time.monotonic() + self._wait())  # never before the chunk ahead
                queue.put_nowait((last_due, data))
        except (ConnectionError, OSError):
            pass
        queue.put_nowait((0.0, b""))
        try:
            await sender
        except (ConnectionError, OSError):
            pass

    def close(self) -> None:
        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
