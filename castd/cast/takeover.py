"""May castd put its session on this TV now? The verdict from the receiver status alone.

A TV in a home is shared: someone watches Netflix on it, a speaker group plays through it, the
Assistant runs a timer on it, or it sits in standby. The receiver status says which app runs (the
Backdrop idle screen `E8C28D3C`, flagged `isIdleScreen`, counts as none), and, where the TV tells it
over HDMI-CEC, `isStandBy` and `isActiveInput`. That is all a sender can know: another device's
media, or an app that keeps no status (Netflix sends no MEDIA_STATUS), shows only as its app.

The policy (castd/sharing.py, resolved per session):
- `takeover`: `always` launches over whatever runs (castd's behaviour before issue 20); `when-idle`
  casts only to a TV that runs no app, the idle screen, or castd's own app, and waits otherwise.
- `sticky`: once castd's picture was on the TV and a person put another app on, castd waits and
  comes back when the TV is free again (no app or the idle screen), then steps aside again the next
  time. Without it, the person's choice ends castd's part on this TV for the session (as before).
  A stop of castd's own media on the remote is the person's word either way (the link sees that in
  MEDIA_STATUS, not here) and stays final.
- `wake`: a LAUNCH turns a CEC TV on and switches its input; with `wake = false` castd does not
  launch on a TV that reports standby or another input, and waits for it.

The idle screen (or standby, with `wake`) covering castd's session while castd still holds it is not
a person's choice (Google TV's ambient mode, a Nest photo frame: CCD issue 151, HA core 136101):
castd launches and LOADs again. Every re-LOAD of a device, for a covering or for a frozen player
(castd/cast/freeze.py's verdict), is paced here, once for both: at once the first time, and a TV
re-LOADed again within a minute of the last waits 1 s, 2 s, 4 s... up to 30 s, so a device that
insists on its idle screen, or freezes again and again, is not flooded. With the link's receiver
status arriving as it changes (and asked for every 2 s while waiting), a TV freed by the person is
cast to within about one status round trip, well inside the issue's 3 s.

`read_media` is the other half of "who has the TV": what one MEDIA_STATUS entry means (the person
stopped castd's picture, another sender's media, a receiver fault to retry, castd's own session).

Pure: no I/O and no clock of its own; `now` is time.monotonic() seconds, passed in.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from enum import Enum

from castd.cast.media import IDLE_APP
from castd.sharing import Sharing, Takeover

HEALTHY_AFTER = 60.0  # a covering this long after the last re-LOAD is a new one: at once again
FIRST_DELAY, MAX_DELAY = 1.0, 30.0  # re-LOADs within HEALTHY_AFTER of each other: 1, 2, 4 .. 30 s apart


@dataclass(frozen=True)
class Policy:
    """The resolved sharing keys that decide (the volume keys are the link's)."""

    takeover: Takeover = "always"
    sticky: bool = False
    wake: bool = True

    @classmethod
    def of(cls, sharing: Sharing) -> "Policy":
        return cls(takeover=sharing.takeover or "always", sticky=bool(sharing.sticky),
                   wake=sharing.wake is not False)


@dataclass(frozen=True)
class Facts:
    """What one receiver status says about the TV, for castd."""

    app_id: str | None = None  # the app on screen (the idle screen excluded); None: none
    app_name: str | None = None
    ours: bool = False  # that app is castd's app session
    idle_screen: bool = False  # the Backdrop idle screen (ambient mode, photo frame) runs
    standby: bool = False  # isStandBy: the TV is off (as far as CEC tells)
    inactive: bool = False  # isActiveInput false: the TV shows another input

    @property
    def busy(self) -> bool:
        """Another app than castd's runs: a person's choice (or the Assistant's, or a group's)."""
        return self.app_id is not None and not self.ours

    @property
    def asleep(self) -> bool:
        return self.standby or self.inactive

    def describe(self) -> str:
        if self.busy:
            return f"{self.app_name or self.app_id} is on the device"
        if self.standby:
            return "the TV is in standby"
        if self.inactive:
            return "the TV shows another input"
        return "the idle screen is on" if self.idle_screen else "the device runs no app"


def facts_of(receiver_status: dict, app_session: str | None) -> Facts:
    """Facts from a RECEIVER_STATUS `status` object and castd's receiver session there (if any)."""
    app = None
    idle_screen = False
    for entry in receiver_status.get("applications") or []:
        if entry.get("isIdleScreen") or entry.get("appId") == IDLE_APP:
            idle_screen = True
            continue
        app = app or entry
    return Facts(app_id=app.get("appId") if app else None,
                 app_name=(app.get("displayName") or app.get("appId")) if app else None,
                 ours=app is not None and app_session is not None and app.get("sessionId") == app_session,
                 idle_screen=idle_screen and app is None,
                 standby=receiver_status.get("isStandBy") is True,
                 inactive=receiver_status.get("isActiveInput") is False)


class Act(Enum):
    CAST = "cast"  # launch castd's app where it is not on, and LOAD (or keep) castd's stream
    WAIT = "wait"  # send the TV nothing; decide again at its next status
    STEP_ASIDE = "step_aside"  # the person took the TV: nothing more to it this session


@dataclass(frozen=True)
class Decision:
    act: Act
    reason: str | None = None
    state: str | None = None  # the link's CastState for WAIT ("waiting") and STEP_ASIDE (user_stopped, other_app)
    at: float | None = None  # CAST: not before this (a paced re-LOAD); None: now
    reload: bool = False  # CAST: LOAD again though the TV may say it plays (the idle screen covered it)


@dataclass
class Sharer:
    """One device's sharing state for one session; `decide` says what castd may do with the TV now.

    Invariants: under `when-idle` castd never casts while another app runs unless castd's picture was
    already there and `always` took it before; a STEP_ASIDE is final for the session; a free TV under
    `sticky` always gets CAST (paced only when the idle screen keeps covering castd)."""

    policy: Policy
    held: bool = False  # castd's app was on this TV in this session
    away_for: str | None = None  # sticky: the person's app castd waits out
    final: tuple[str, str] | None = None  # (state, reason) once castd stepped aside for good
    covered: int = 0  # re-LOADs because the idle screen or standby covered castd's session
    cover_reason: str | None = None
    _cover_at: float | None = None  # a covering seen: re-LOAD at this time
    _reloaded_at: float | None = None
    _streak: int = 0  # re-LOADs within HEALTHY_AFTER of each other
    _woken: bool = False  # castd launched to wake this TV and it still says standby (no CEC): once is enough

    def decide(self, now: float, facts: Facts) -> Decision:
        if self.final is not None:
            return Decision(Act.STEP_ASIDE, self.final[1], self.final[0])
        if facts.ours:
            self.held, self.away_for = True, None
            if facts.asleep:
                if not self.policy.wake:
                    return Decision(Act.WAIT, f"{facts.describe()}; castd waits for it (wake = false)", "waiting")
                if self._woken and self._cover_at is None:  # the LAUNCH did not wake it: play on, ask no more
                    return Decision(Act.CAST)
                return self._covered(now, f"{facts.describe()} while castd's session was on it")
            self._cover_at, self._woken = None, False  # castd's app is on a TV that is awake: nothing covers it
            return Decision(Act.CAST)
        if facts.busy:
            name = facts.app_name or facts.app_id
            if self.held or self.away_for is not None:  # a person put their app over castd's
                if not self.policy.sticky:
                    return self._step_aside("other_app", f"{name} took over the device")
                self.away_for, self._cover_at = name, None
                return Decision(Act.WAIT, f"{name} took over; castd comes back when it quits (sticky)", "waiting")
            if self.policy.takeover == "when-idle":
                return Decision(Act.WAIT, f"{name} is on the device; castd casts when it quits (when-idle)",
                                "waiting")
            if facts.asleep and not self.policy.wake:
                return Decision(Act.WAIT, f"{Facts(standby=facts.standby, inactive=facts.inactive).describe()}; "
                                          "castd casts when it wakes (wake = false)", "waiting")
            return self._cast(now)
        # free: no app, or the idle screen
        if facts.asleep and not self.policy.wake:
            return Decision(Act.WAIT, f"{facts.describe()}; castd casts when it wakes (wake = false)", "waiting")
        if self.away_for is not None:  # sticky: the person's app quit
            self.away_for = None
            return self._cast(now, came_back=True)
        if self.held:
            if facts.idle_screen or facts.asleep:
                return self._covered(now, f"{facts.describe()} over castd's session")
            if not self.policy.sticky:
                return self._step_aside("user_stopped", "castd's app was closed on the device")
        return self._cast(now)

    def _cast(self, now: float, came_back: bool = False) -> Decision:
        if self._cover_at is not None:  # a covering still waits for its re-LOAD
            return Decision(Act.CAST, self.cover_reason, at=self._cover_at, reload=True)
        return Decision(Act.CAST, "the person's app quit; castd comes back (sticky)" if came_back else None)

    def _covered(self, now: float, why: str) -> Decision:
        if self._cover_at is None:
            self._cover_at, self.cover_reason = now + self._reload_delay(now), why
        return Decision(Act.CAST, self.cover_reason, at=self._cover_at, reload=True)

    def _reload_delay(self, now: float) -> float:
        if self._reloaded_at is None or now - self._reloaded_at >= HEALTHY_AFTER:
            self._streak = 0
        return 0.0 if self._streak == 0 else min(MAX_DELAY, FIRST_DELAY * 2 ** (self._streak - 1))

    def frozen(self, now: float) -> float:
        """The TV's player is stuck (freeze.py): counted as a re-LOAD now; the seconds to wait before it."""
        delay = self._reload_delay(now)
        self._streak += 1
        self._reloaded_at = now
        return delay

    def _step_aside(self, state: str, reason: str) -> Decision:
        self.final = (state, reason)
        return Decision(Act.STEP_ASIDE, reason, state)

    def reloaded(self, now: float, facts: Facts | None = None) -> None:
        """The link launches and LOADs again after a covering (`facts`: the TV as it was covered)."""
        if self._cover_at is None:
            return
        self._woken = facts is not None and facts.asleep
        self.covered += 1
        self._streak += 1
        self._reloaded_at, self._cover_at = now, None

    def stopped_by_viewer(self, state: str, reason: str) -> None:
        """The person stopped castd's own media (the link reads that in MEDIA_STATUS): final."""
        self.final = (state, reason)


# ---- what one MEDIA_STATUS entry means ------------------------------------------------------------
USER_IDLE_REASONS = ("CANCELLED", "INTERRUPTED")  # IDLE for these, not caused by castd: the person stopped it


class News(Enum):
    PLAYER = "player"  # castd's media session: its playerState (PLAYING, BUFFERING, PAUSED) to follow
    IGNORE = "ignore"  # nothing castd acts on (a session castd ended, a quiet IDLE while loading, ...)
    ADOPT = "adopt"  # castd's LOADed URL under a session id castd did not know yet: it is castd's
    VIEWER_STOPPED = "viewer_stopped"  # castd's media stopped on the remote or a phone: final
    OTHER_SENDER = "other_sender"  # another sender's media on the device: the person chose it: final
    RECEIVER_ENDED = "receiver_ended"  # castd's media ended by itself (ERROR, FINISHED): a fault to retry


def read_media(entry: dict, media_session: int | None, loaded: str | None, ended_by_us: Container[int],
               loading: bool) -> News:
    """One MEDIA_STATUS entry, as castd reads it: `media_session` and `loaded` are castd's media session and
    URL on the device, `ended_by_us` the sessions castd itself ended (LOAD over them, STOP), `loading`
    whether castd waits for its LOAD to play."""
    msid, player_state = entry.get("mediaSessionId"), entry.get("playerState")
    content = (entry.get("media") or {}).get("contentId")
    if msid is not None and msid == media_session:
        if player_state != "IDLE":
            return News.PLAYER
        reason = entry.get("idleReason")
        if reason is None and loading:
            return News.IGNORE  # some receivers pass through IDLE (no reason) while they load
        return News.VIEWER_STOPPED if reason in USER_IDLE_REASONS else News.RECEIVER_ENDED
    if msid in ended_by_us or player_state == "IDLE":
        return News.IGNORE
    if content == loaded and media_session is None:
        return News.ADOPT
    if content not in (None, loaded):
        return News.OTHER_SENDER
    return News.IGNORE
