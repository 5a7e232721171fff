"""Is the TV's player stuck? The verdict from MEDIA_STATUS alone, against wall time.

A receiver can keep reporting our media session as BUFFERING, or as PLAYING with a currentTime that
no longer moves, while castd's stream is fine: measured in Shaka Player 4.16 (the Cast receiver's HLS
engine) after an encoder restart, the player stopped for good in 8 of 9 tries with no error event
(issue 11). Nothing on the Cast channel says so; only the media time against the clock shows it. The
cure a sender has is a new LOAD.

The receiver sends MEDIA_STATUS on a change of playerState, not while currentTime runs, so the link
asks (media GET_STATUS) every `poll` seconds once the device plays. The verdict needs evidence: a
status, in PLAYING or BUFFERING, received at least `stall_seconds` after the media time was last seen
advancing in PLAYING. Only PLAYING counts as movement because a starved Shaka moves currentTime on in
jumps while BUFFERING (measured: +3.5 s every 3.5 s with every segment fetch hanging) as the live
window slides away from it: those jumps are not playback. A missing answer is no
evidence (the connection's heartbeat judges that), and a pause by the viewer is not a freeze: PAUSED
restarts the count, so a resumed player gets the full window again.

With `stall_seconds` = 4 and `poll` = 1, a frozen receiver is re-LOADed 4 to 5 s after its media time
last moved (the issue's target: within 6 s). Shaka's own stalls at a live start lasted up to 1.0 s
(issue 11), well inside the window. Before the first PLAYING after a LOAD the watch is off: the LOAD's
own deadline (`cast_load_timeout`) covers a player that never starts.

Pure: no I/O and no clock of its own; `now` is time.monotonic() seconds, passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

ADVANCE_EPSILON = 0.05  # seconds of media time that count as movement (currentTime is rounded to ms)


class Verdict(Enum):
    FINE = "fine"  # advancing, paused by the viewer, or not yet playing
    ASK = "ask"  # no fresh status: send a media GET_STATUS
    STUCK_BUFFERING = "stuck_buffering"  # BUFFERING for longer than stall_seconds
    FROZEN = "frozen"  # PLAYING but currentTime still for longer than stall_seconds


@dataclass
class FreezeWatch:
    """What one device's player did lately, from its MEDIA_STATUS; `decide` says whether it is stuck."""

    stall_seconds: float
    poll: float = 1.0
    watching: bool = False  # on from the first PLAYING after a LOAD
    player_state: str | None = None
    media_time: float | None = None  # the last currentTime reported
    advanced_at: float | None = None  # monotonic time the media time was last seen moving in PLAYING (or began to)
    advanced_media_time: float | None = None  # the currentTime seen then
    status_at: float | None = None  # monotonic time of the last status
    asked_at: float | None = None

    def reset(self) -> None:
        """A new LOAD (or none): forget the old player; watch again from its first PLAYING."""
        self.watching = False
        self.player_state = self.media_time = self.advanced_at = self.advanced_media_time = None
        self.status_at = self.asked_at = None

    def seen(self, now: float, player_state: str | None, current_time: float | None) -> None:
        """A MEDIA_STATUS entry of castd's media session."""
        previous = self.player_state
        self.player_state, self.status_at = player_state, now
        if player_state == "PLAYING" and not self.watching:
            self.watching = True
            self._advanced(now, current_time)
        elif player_state == "PAUSED" or (player_state == "PLAYING" and previous == "PAUSED"):
            self._advanced(now, current_time)  # a viewer's pause is no freeze; a resume starts afresh
        elif player_state == "PLAYING" and current_time is not None and (
                self.media_time is None or abs(current_time - self.media_time) > ADVANCE_EPSILON):
            self._advanced(now, current_time)
        if current_time is not None:
            self.media_time = current_time

    def _advanced(self, now: float, current_time: float | None) -> None:
        self.advanced_at, self.advanced_media_time = now, current_time

    def asked(self, now: float) -> None:
        self.asked_at = now

    def decide(self, now: float) -> Verdict:
        if not self.watching or self.advanced_at is None:  # ask anyway: a receiver may go PLAYING unsaid
            return Verdict.ASK if self._stale(now) else Verdict.FINE
        if self.player_state in ("PLAYING", "BUFFERING") and self.status_at is not None \
                and self.status_at - self.advanced_at >= self.stall_seconds:
            return Verdict.STUCK_BUFFERING if self.player_state == "BUFFERING" else Verdict.FROZEN
        if self.player_state == "PAUSED":
            return Verdict.FINE
        return Verdict.ASK if self._stale(now) else Verdict.FINE

    def _stale(self, now: float) -> bool:
        times = [t for t in (self.status_at, self.asked_at) if t is not None]
        return not times or now - max(times) >= self.poll

    def still_for(self, now: float) -> float:
        """Seconds since the media time last moved in PLAYING (0 when not watching)."""
        return now - self.advanced_at if self.watching and self.advanced_at is not None else 0.0
