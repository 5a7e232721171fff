"""The fake device's receiver-grade media engine: what it is LOADed plays in the real Shaka Player.

A real Cast Web Receiver does not decode a segment and call it done: it plays the playlist in Shaka
Player over MSE from the LOAD on, and its MEDIA_STATUS is that player's state. `ShakaEngine` gives the
fake the same: one headless Chromium with tests/glass's harness page per device, driven from one thread
(WebDriver is not thread-safe), which runs the device's commands (load, pause, play, unload, freeze) in
order and reads the player's state about 4 times a second between them. Each reading goes to the
device as a `Reading` (its MEDIA_STATUS fields); the device sends a status to its senders when
playerState changes, as the Default Media Receiver does, and answers GET_STATUS from the latest one.

playerState from the player: a critical Shaka error -> IDLE/ERROR; the video paused -> PAUSED;
Shaka buffering, or no frame played yet since the load -> BUFFERING; else PLAYING.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_LOGGER = logging.getLogger("fakecast")

POLL = 0.25  # seconds between two readings of the player (a real receiver's status is as fresh as asked)
LOAD_TIMEOUT = 20.0  # Shaka's load() resolves once the manifest is parsed and streaming started


@dataclass(frozen=True)
class Reading:
    """The player's state as a receiver reports it."""

    generation: int  # the LOAD it belongs to
    player_state: str  # PLAYING | BUFFERING | PAUSED | IDLE
    idle_reason: str | None  # ERROR when Shaka stopped with a critical error
    current_time: float
    error_code: int | None  # Shaka's error code (e.g. 3016, 1001, 4032)
    state: object  # glass.PlayerState, the whole reading, for tests


@dataclass(frozen=True)
class LoadOutcome:
    generation: int
    ok: bool
    error: str | None = None
    error_code: int | None = None  # Cast detailedErrorCode
    shaka_code: int | None = None


def detailed_error_code(shaka_code: int | None, category: int | None) -> int:
    """A Cast DetailedErrorCode for a Shaka error: network (category 1) -> 103 MEDIA_NETWORK, media
    (3) -> 102 MEDIA_DECODE, manifest (4) -> 311 HLS_MANIFEST_MASTER, else 104 MEDIA_SRC_NOT_SUPPORTED."""
    return {1: 103, 3: 102, 4: 311}.get(category or 0, 104)


class ShakaEngine:
    """One Shaka Player for one fake device. `on_reading` and `on_loaded` are called from its thread."""

    def __init__(self, line: str, on_reading: Callable[[Reading], None],
                 on_loaded: Callable[[LoadOutcome], None], config: str | None = None) -> None:
        from glass import ShakaPlayer  # tests/glass; imported here so the fast fake never needs selenium

        self.player = ShakaPlayer(line, config=config)  # ~1 s; fails at once if Shaka is not installed
        self.line = line
        self._on_reading = on_reading
        self._on_loaded = on_loaded
        self._commands: queue.Queue[tuple[str, tuple]] = queue.Queue()
        self._generation = 0
        self._stop = threading.Event()
        self.last = None  # the last glass.PlayerState read
        self._thread = threading.Thread(target=self._run, name=f"fakecast-{line}", daemon=True)
        self._thread.start()

    # ---- commands (any thread) ---------------------------------------------------------------
    def load(self, generation: int, url: str) -> None:
        self._commands.put(("load", (generation, url)))

    def pause(self) -> None:
        self._commands.put(("pause", ()))

    def play(self) -> None:
        self._commands.put(("play", ()))

    def unload(self) -> None:
        self._commands.put(("unload", ()))

    def freeze(self, how: str | None) -> None:
        """Freeze the player on purpose until the next LOAD (None: thaw now)."""
        self._commands.put(("freeze", (how,)))

    def close(self) -> None:
        self._stop.set()
        self._commands.put(("quit", ()))
        self._thread.join(15)
        self.player.close()

    # ---- the engine's thread ------------------------------------------------------------------
    def _run(self) -> None:
        loading: tuple[int, float] | None = None  # (generation, deadline) of a load not yet resolved
        active = False  # a stream is loaded (or loading)
        while not self._stop.is_set():
            try:
                name, args = self._commands.get(timeout=POLL)
            except queue.Empty:
                name, args = "", ()
            try:
                if name == "quit":
                    return
                if name == "load":
                    self._generation, url = args
                    self.player.block_segments(False)
                    self.player.load(url)
                    loading, active = (self._generation, time.monotonic() + LOAD_TIMEOUT), True
                elif name == "pause":
                    self.player.pause()
                elif name == "play":
                    self.player.play()
                elif name == "unload":
                    self.player.unload()
                    loading, active = None, False
                elif name == "freeze":
                    self.player.block_segments(args[0] == "segments")
                if not active:
                    continue
                state = self.player.state()
                self.last = state
                if loading is not None:
                    generation, deadline = loading
                    if state.load_error is not None:
                        err = state.load_error
                        loading, active = None, False
                        self._on_loaded(LoadOutcome(generation, False, f"Shaka {err.get('code')}: {err.get('message')}",
                                                    detailed_error_code(err.get("code"), err.get("category")),
                                                    err.get("code")))
                        continue
                    if state.loaded and state.url is not None:
                        loading = None
                        self._on_loaded(LoadOutcome(generation, True))
                    elif time.monotonic() > deadline:
                        loading, active = None, False
                        self._on_loaded(LoadOutcome(generation, False, f"Shaka did not load within {LOAD_TIMEOUT:g}s",
                                                    104))
                        continue
                    else:
                        continue
                self._on_reading(self._reading(state))
            except Exception:  # noqa: BLE001  (the browser went away: the device's player is gone)
                if self._stop.is_set():
                    return
                _LOGGER.exception("fakecast: the Shaka engine failed")
                time.sleep(POLL)

    def _reading(self, state) -> Reading:
        critical = next((e for e in state.errors if e.severity == 2), None)
        if critical is not None:
            return Reading(self._generation, "IDLE", "ERROR", state.current_time, critical.code, state)
        if state.paused and state.started:
            kind = "PAUSED"
        elif state.buffering or not state.started:
            kind = "BUFFERING"
        else:
            kind = "PLAYING"
        return Reading(self._generation, kind, None, state.current_time, None, state)
