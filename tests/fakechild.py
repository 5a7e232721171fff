"""Fake children, a fake clock and the Rig that drives a real Supervisor with them, for the decision tests
(tests/test_decisions.py, tests/test_programme_decisions.py).

The supervisor and the cast side take their child factories as parameters (as uvicorn's supervisor takes
its target), so their decisions can be driven in milliseconds: a FakeChild records what it is sent,
says what the test makes it say, and exits when the test (or a Quit, or a kill) says so. What only a
real Chromium can show stays in the end-to-end tests.
"""

from __future__ import annotations

import itertools
import multiprocessing
import signal
from pathlib import Path
from typing import Any

import msgspec

from castd.cast.messages import CastQuit
from castd.config import Config
from castd.protocol import Ack, Progress, Quit, Ready, Snapshot, Start, encode, event_decoder
from castd.supervisor.loop import Supervisor

_pids = itertools.count(900_000)


class FakeClock:
    """monotonic() and time() in one: the test moves it with advance()."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeChild:
    """A child process that is not one: `sent` is what the parent sent it, `say()` queues its reports,
    `exit()` ends it; a Quit ends it at once unless it is `frozen` (a hung or SIGSTOPped child)."""

    def __init__(self, params: Any, clock: FakeClock, registry: list[FakeChild]) -> None:
        self.params = params
        self.clock = clock
        self.pid = next(_pids)
        self.started_at = clock()
        self.last_message_at = self.started_at
        self.eof = False
        self.sent: list[Any] = []
        self.outbox: list[Any] = []
        self.code: int | None = None
        self.frozen = False
        self.killed = self.closed = False
        registry.append(self)

    # ---- the Child protocol --------------------------------------------------------------------
    def waitables(self) -> list[Any]:
        return []

    def send(self, command: Any) -> bool:
        if self.code is not None:
            return False
        self.sent.append(command)
        if isinstance(command, (Quit, CastQuit)) and not self.frozen:
            self.exit(0)
        return True

    def messages(self) -> list[Any]:
        out, self.outbox = self.outbox, []
        if out:
            self.last_message_at = self.clock()
        return out

    def exitcode(self) -> int | None:
        return self.code

    def kill(self) -> None:
        self.killed = True
        if self.code is None:
            self.exit(-signal.SIGKILL)

    def close(self) -> None:
        assert self.code is not None, "closed before it was reaped"
        self.closed = True

    def log_tail(self, limit: int = 600) -> str:
        return ""

    # ---- for the test ----------------------------------------------------------------------------
    def say(self, *messages: Any) -> None:
        self.outbox.extend(messages)

    def exit(self, code: int) -> None:
        self.code = code
        self.eof = True

    @property
    def alive(self) -> bool:
        return self.code is None

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.sent if isinstance(m, kind)]


class Rig:
    """A real Supervisor with fake children, a fake clock and a real Pipe standing in for the front end.

    `config` is what castd.toml would hold (dashboards and playlists as plain dicts too); the memory probe
    runs inline, so each step() is deterministic. Nothing runs between steps: the test moves the clock."""

    def __init__(self, tmp_path: Path, **config: Any) -> None:
        self.clock = FakeClock()
        self.encoders: list[FakeChild] = []
        self.workers: list[FakeChild] = []
        self.front, conn = multiprocessing.Pipe()
        self.config = msgspec.convert({"runtime_dir": str(tmp_path / "run"), **config}, Config)
        self.sup = Supervisor(conn, self.config, clock=self.clock, wall=self.clock.wall,
                              encoder_factory=lambda params: FakeChild(params, self.clock, self.encoders),
                              worker_factory=lambda cfg: FakeChild(cfg, self.clock, self.workers),
                              probe_in_thread=False)
        self.acks: list[Ack] = []
        self.status: Any = None
        self.seq = 0
        self.frames = 10

    def send(self, *commands: Any) -> None:
        for command in commands:
            self.front.send_bytes(encode(command))

    def start(self, url: str = "http://a.example/", quality: str = "720p", **fields: Any) -> str:
        self.seq += 1
        command_id = f"c{self.seq}"
        self.send(Start(id=command_id, url=url, quality=quality, **fields))
        return command_id

    def streaming(self, **start: Any) -> str:
        """A session started (`start` as for start()) whose child shows its page: most tests' first steps."""
        command_id = self.start(**start)
        self.step()
        self.stream()
        return command_id

    def step(self, seconds: float = 0.0, passes: int = 1) -> None:
        for _ in range(passes):
            self.clock.advance(seconds)
            self.sup.step()
            while self.front.poll():
                message = event_decoder.decode(self.front.recv_bytes())
                if isinstance(message, Ack):
                    self.acks.append(message)
                elif isinstance(message, Snapshot):
                    self.status = message.status

    @property
    def encoder(self) -> FakeChild:
        return self.encoders[-1]

    def alive(self) -> list[FakeChild]:
        return [c for c in self.encoders if c.alive]

    def stream(self, child: FakeChild | None = None, segments: int = 3) -> None:
        """The child shows its page in a finished segment and keeps reporting."""
        child = child or self.encoder
        nav = self.sup.wanted.nav if self.sup.wanted else 0
        child.say(Progress(frames=10, fps=10.0, segments=segments, last_frame_at=0, last_segment_at=0,
                           media_end=float(segments)),
                  Ready(nav=nav, url=self.sup.wanted.url if self.sup.wanted else ""))
        self.step()

    def pulse(self, child: FakeChild, frames: int, segments: int, media_end: float = 0.0) -> None:
        child.say(Progress(frames=frames, fps=10.0, segments=segments, last_frame_at=0, last_segment_at=0,
                           media_end=media_end))

    def run(self, seconds: float) -> None:
        """Let `seconds` pass in 0.5 s steps with the child reporting as a healthy one does (frames,
        segments, and Ready for the page it is asked to show)."""
        for _ in range(int(round(seconds / 0.5))):
            self.frames += 5
            wanted = self.sup.wanted
            self.pulse(self.encoder, frames=self.frames, segments=self.frames // 10, media_end=self.frames / 10)
            if wanted is not None:
                self.encoder.say(Ready(nav=wanted.nav, url=wanted.url))
            self.step(seconds=0.5)


# ---- real children for castd/children/piped.py (spawned: module-level functions only) ------------------
def garbage_then_ready(conn: Any, payload: bytes) -> None:
    """A real child that sends one message its parent cannot decode, then a good one, then waits to be told
    to quit (EOF, or anything on its pipe)."""
    conn.send_bytes(b"\xc1 not msgpack")
    conn.send_bytes(encode(Ready(nav=7, url="http://ok.example/")))
    try:
        conn.recv_bytes()
    except EOFError:
        pass
