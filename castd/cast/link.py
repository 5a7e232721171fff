"""One device's link: put the session on one TV, keep it there, and say how it goes.

A link is a thread in the cast worker with one job per device: connect (a timeout), launch castd's app
(the Default Media Receiver, or DashCast in direct mode), LOAD the stream once its first segment exists,
then watch. It decides what the device's messages mean:

- a dropped connection or heartbeat timeout: reconnect (paced), read the device's state again, and LOAD
  again only when the device no longer plays castd's stream (a TV that kept playing is left alone:
  a needless LOAD would blank it for a second);
- a receiver error (IDLE with ERROR or FINISHED), a failed LAUNCH or LOAD: retry, paced (0.5 s doubling
  to 30 s), at most `cast_retries` times in a row; then `retrying`: the connection is closed and a fresh
  round starts after `cast_retry_seconds` (30), doubling to 15 minutes (castd/children/policy.py's
  RetryLater, the encoder's rule), for as long as the session wants the TV: a TV unplugged for the
  evening is back on the dashboard within a round of its return, and at the cap one round of ~1 minute
  of tries per 15 minutes costs nothing. `cast_retry_seconds = 0`: `failed` for the rest of the session;
- a player stuck in BUFFERING, or with a currentTime that stands still, for `cast_stall_seconds` while
  castd's stream plays on (castd/cast/freeze.py decides, from MEDIA_STATUS it asks for every second):
  LOAD again at once, counted in `reloads` with the reason; a pause by the viewer is left alone;
- the person took the TV back (IDLE with CANCELLED or INTERRUPTED that castd did not cause, another
  sender's media, castd's app closed, another app started): `user_stopped` / `other_app`, and nothing
  more is sent to that device until the supervisor says stop (then castd's app is quit if still shown).

Commands carry explicit sessionId / mediaSessionId and are repeated, never assumed: LAUNCH of the running
app keeps its session, a STOP naming an old session is refused by the device, a LOAD is preceded by a
GET_STATUS. The supervisor sees only the reports (castd/cast/messages.py DeviceReport).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from castd.cast.connection import CastConnection, CastError, Interrupted
from castd.cast.devices import NotFound, Resolved, Resolver
from castd.cast.freeze import FreezeWatch, Verdict
from castd.cast.takeover import Act, Decision, News, Policy, Sharer, facts_of, read_media
from castd.cast.media import (APP_MEDIA_RECEIVER, APP_NAMES, IDLE_APP, NS_DASHCAST, NS_MEDIA, NS_RECEIVER,
                              app_for, dashcast_request, load_request)
from castd.cast.streamurl import Unreachable, stream_base
from castd.config import Config
from castd.logs import log
from castd.protocol import USER_STATES, CastDevice, CastState
from castd.children.backoff import Backoff
from castd.children.policy import RetryLater
from castd.sharing import Sharing

COMMAND_TIMEOUT = 8.0  # GET_STATUS, STOP: answered at once by a device that is there
PLAYING_STATES = ("PLAYING", "BUFFERING", "PAUSED")
HEALTHY_AFTER = 60.0  # playing this long forgives earlier failures
TERMINAL = USER_STATES
MEDIA_TIME_REPORT = 5.0  # /status's media time of a device that plays on is at most this old (one report each)
WAIT_POLL = 2.0  # while waiting for a free TV, its receiver status is asked for this often (besides its own news)


@dataclass(frozen=True)
class Plan:
    """What the supervisor wants from this device now."""

    session: str
    mode: str  # hls | direct
    title: str
    stream_path: str | None = None  # hls: set once the stream has its first segment
    page_url: str | None = None  # direct
    stop: bool = False
    sharing: Sharing = Sharing()  # unset keys: the config's


def current_app(receiver_status: dict) -> dict | None:
    """The app on screen, or None for no app / the ambient screen."""
    for app in receiver_status.get("applications") or []:
        if app.get("isIdleScreen") or app.get("appId") == IDLE_APP:
            continue
        return app
    return None


def content_id(entry: dict) -> str | None:
    media = entry.get("media") or {}
    return media.get("contentId")


Claim = Callable[["Link", tuple[str, int]], "str | None"]  # the worker: may this link drive that address?


class Link:
    def __init__(self, spec: str, plan: Plan, config: Config, resolver: Resolver,
                 report: Callable[["Link"], None], app_session: str | None = None, claim: Claim | None = None) -> None:
        self.thread = threading.Thread(target=self.run, name=f"cast-link {spec}", daemon=True)
        self.spec = spec
        self.config = config
        self.resolver = resolver
        self._report = report
        self._claim = claim
        self._lock = threading.Lock()
        self._plan = plan
        self._version = 0
        self.quit = threading.Event()
        self.conn: CastConnection | None = None
        self.device: Resolved | None = None
        self.base: str | None = None
        # the device: castd's app there (receiver sessionId), and whether it was seen running this session
        self.app_session = app_session
        self.app_id: str | None = None
        self.receiver: dict = {}  # the device's last receiver status
        self.owns_app = app_session is not None  # a restarted worker resumes a session castd had there
        # the session
        self.session = plan.session
        self.state: CastState = "connecting"
        self.reason: str | None = None
        self.failures = 0
        self.last_error: str | None = None
        self.terminal = self.given_up = False
        self.retry_at: float | None = None
        self.later = RetryLater(first=config.cast_retry_seconds, healthy_after=HEALTHY_AFTER)  # after a give-up
        self.resting = False  # a round of cast_retries gave up; the next round starts at retry_at
        self.stopped_session: str | None = None
        self.media_session: int | None = None
        self.loaded: str | None = None  # URL (hls) or page (direct) the device was told to play
        self.stream_url: str | None = None
        self.ended_by_us = RecentIds()  # media sessions castd itself ended (LOAD over them, STOP): the last 64
        self.verified_gen = -1  # connection generation whose receiver state was read
        self.media_verified_gen = -1
        self.load_deadline: float | None = None
        self.playing_since: float | None = None
        self.backoff = Backoff(first=0.5, cap=30.0, healthy_after=HEALTHY_AFTER)
        self.updated_at = time.time()
        # the TV's player: is it stuck? (cast_stall_seconds 0: never asked)
        stall = config.cast_stall_seconds
        self.watch = FreezeWatch(stall_seconds=stall, poll=min(1.0, stall / 4)) if stall > 0 else None
        self.reloads = 0
        self.reload_reason: str | None = None
        self.reload_wanted = False  # LOAD again even though the device says it plays the stream
        self.media_time: float | None = None  # the receiver's currentTime last seen advancing ...
        self.media_time_at: float | None = None  # ... and when (wall clock)
        # sharing the TV (castd/cast/takeover.py decides; the volume keys are done here)
        self.sharing = plan.sharing.over(config.tv_sharing(spec))
        self.sharer = Sharer(Policy.of(self.sharing), held=self.owns_app)
        self.other_app: str | None = None  # the app castd waits out, for /status
        self.saved_volume: dict | None = None  # the TV's volume before castd changed it (restore_volume)
        self.silenced = False  # silent_start: muted for the launch, not yet unmuted

    # ---- from the worker thread ------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def update(self, plan: Plan) -> None:
        with self._lock:
            self._plan = plan
            self._version += 1

    @property
    def plan(self) -> Plan:
        with self._lock:
            return self._plan

    def close(self) -> None:
        self.quit.set()

    def snapshot(self) -> CastDevice:
        device = self.device
        return CastDevice(device=self.spec, state=self.state, reason=self.reason,
                          name=device.name if device else None, host=device.host if device else None,
                          port=device.port if device else None, uuid=device.uuid if device else None,
                          model=device.model if device else None, stream_url=self.stream_url,
                          failures=self.failures, last_error=self.last_error, updated_at=self.updated_at,
                          reloads=self.reloads, reload_reason=self.reload_reason, media_time=self.media_time,
                          media_time_at=self.media_time_at, app=self.other_app if self.state == "waiting" else None,
                          volume=self._tv_volume("level"), muted=self._tv_volume("muted"),
                          retry_in=round(max(0.0, self.retry_at - time.monotonic()), 2)
                          if self.state in ("failed", "retrying") and self.retry_at is not None else None)

    def _tv_sharing(self) -> Sharing:
        """This TV's [[tvs]] keys over the config's, found by the spec or, once resolved, its name, UUID, address."""
        device = self.device
        names = (self.spec,) if device is None else \
            (self.spec, device.name, device.uuid, f"{device.host}:{device.port}", device.host)
        return self.config.tv_sharing(*names)

    def _tv_volume(self, key: str):
        volume = self.receiver.get("volume") or {}
        value = volume.get(key)
        if key == "level":
            return round(value * 100) if isinstance(value, (int, float)) else None
        return value if isinstance(value, bool) else None

    # ---- the loop ---------------------------------------------------------------------------
    @property
    def log(self):
        """castd's logger with this session in every line."""
        return log.bind(session=self.session)

    def run(self) -> None:
        try:
            while not self.quit.is_set():
                with self._lock:
                    plan, version = self._plan, self._version
                check = lambda v=version: self.quit.is_set() or self._version != v  # noqa: E731
                try:
                    if plan.session != self.session:
                        self._new_session(plan)
                    elif plan.sharing.over(self._tv_sharing()) != self.sharing:
                        self.sharing = plan.sharing.over(self._tv_sharing())
                        self.sharer.policy = Policy.of(self.sharing)
                    if plan.stop:
                        if self.stopped_session != plan.session:
                            self._stop_on_device(check)
                            self.stopped_session = plan.session
                        self._idle(check)
                    elif self.terminal or self.given_up:
                        self._idle(check)
                    elif self.retry_at is not None and not self._sleep_until(self.retry_at, check):
                        continue
                    else:
                        self.retry_at = None
                        if self.resting:
                            self._new_round()
                        self._step(plan, check)
                except Interrupted:
                    continue
                except (CastError, NotFound, Unreachable) as exc:
                    self._failed(exc)
                except Exception as exc:  # a bug must not end the link; it counts as a failure
                    self.log.exception("cast link error", device=self.spec)
                    self._failed(CastError(f"internal error: {type(exc).__name__}: {exc}", reconnect=True))
        finally:
            self._close_connection()

    def _new_session(self, plan: Plan) -> None:
        carried = self.state in ("playing", "paused", "loading", "launched") and not self.terminal
        self.session = plan.session
        self.terminal = self.given_up = False
        self.failures, self.last_error, self.retry_at = 0, None, None
        self.backoff.reset()
        self.later.reset()
        self.resting = False
        self.owns_app = False  # a new webhook start: launch (or reuse) the app, never read its absence as a "no"
        if not carried:
            self.app_session = None
        if self.media_session is not None:  # the old session's stream ends with it: not a fault of this one
            self.ended_by_us.add(self.media_session)
        self.media_session = self.loaded = self.stream_url = None
        self.reloads, self.reload_reason, self.reload_wanted = 0, None, False
        self.media_time = self.media_time_at = None
        if self.watch is not None:
            self.watch.reset()
        self.sharing = plan.sharing.over(self._tv_sharing())
        self.sharer = Sharer(Policy.of(self.sharing))
        self.other_app = None
        self.silenced = False
        self._set("connecting", None)

    def _step(self, plan: Plan, check: Callable[[], bool]) -> None:
        conn = self._connection(check)
        if self.verified_gen != conn.generation:
            status = conn.receiver_status(COMMAND_TIMEOUT, check)
            if self.verified_gen >= 0:
                self.log.info("cast device reconnected", device=self.spec, address=conn.label)
            self.verified_gen = conn.generation
            self.receiver = status
        now = time.monotonic()
        decision = self.sharer.decide(now, facts_of(self.receiver, self.app_session))
        if decision.act is Act.STEP_ASIDE:
            self._restore_volume(conn)
            self._terminal(decision.state or "other_app", decision.reason or "another app took over")  # type: ignore[arg-type]
            return
        if decision.act is Act.WAIT:
            if self.sharer.held:  # a person's app over castd's (sticky), or a TV gone to standby
                self._restore_volume(conn)
            self._wait_for_a_free_tv(decision, conn, check)
            return
        if decision.at is not None and decision.at > now:
            self._set("waiting", f"{decision.reason}; castd loads again in {decision.at - now:.0f}s")
            self._sleep_until(decision.at, check)
            return
        if decision.reload:
            self._covered(decision, now)
        elif decision.reason:
            self.log.info("the cast device is free again; castd casts", device=self.spec, reason=decision.reason)
        if not self._own_app(plan, conn, check, launch=decision.reload):
            return
        if plan.mode == "direct":
            self._ensure_page(plan, conn)
        elif plan.stream_path is None:
            self._set("launched", "waiting for the stream's first segment")
        else:
            self._ensure_stream(plan, conn, check)
        self._watch(plan, conn, check)

    # ---- connecting --------------------------------------------------------------------------
    def _connection(self, check: Callable[[], bool]) -> CastConnection:
        conn = self.conn
        if conn is not None and not conn.alive():
            self._close_connection()  # pychromecast's one reconnect attempt failed: start afresh
            conn = None
        if conn is None:
            self._set("connecting", self.reason if self.state == "connecting" else None)
            self.device = self.resolver.resolve(self.spec, check)
            if self._claim is not None and (other := self._claim(self, (self.device.host, self.device.port))):
                self._one_tv(other)
            self.base = stream_base(self.config, self.device.host)
            self.sharing = self.plan.sharing.over(self._tv_sharing())  # a [[tvs]] entry may name it otherwise
            self.sharer.policy = Policy.of(self.sharing)
            conn = CastConnection(self.device, self.config.cast_connect_timeout)
            self.conn = conn
            self.verified_gen = self.media_verified_gen = -1
            conn.start()
        if not conn.connected():
            if self.state not in ("connecting", "failed", "stopping"):
                self.log.warning("cast connection lost; reconnecting", device=self.spec, address=conn.label)
                self._set("connecting", "connection lost; reconnecting")
            if not conn.wait_connected(self.config.cast_connect_timeout, check):
                reason = conn.failure()
                self._close_connection()
                raise CastError(reason)
        return conn

    def _close_connection(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    # ---- castd's app ------------------------------------------------------------------------
    def _own_app(self, plan: Plan, conn: CastConnection, check: Callable[[], bool], launch: bool = False) -> bool:
        """True when castd's app (of the plan's kind) runs there; launches it otherwise (the sharer said
        castd may), or when `launch` (a LAUNCH wakes a TV in standby)."""
        app = current_app(self.receiver)
        want = app_for(plan.mode)
        if not launch and self.app_session is not None and app is not None \
                and app.get("sessionId") == self.app_session and app.get("appId") == want:
            self.owns_app = True
            return True
        self._set_volume_for_launch(conn, check)
        self._set("connecting", f"starting {APP_NAMES[want]}")
        reply = conn.request(NS_RECEIVER, {"type": "LAUNCH", "appId": want}, app=False,
                             timeout=self.config.cast_connect_timeout, interrupted=check)
        kind = reply.get("type")
        if kind == "LAUNCH_ERROR":
            raise CastError(f"the device would not start {APP_NAMES[want]}: {reply.get('reason', 'no reason given')}")
        if kind != "RECEIVER_STATUS":
            raise CastError(f"LAUNCH of {APP_NAMES[want]} answered with {kind}: {reply.get('reason', '')}".rstrip(": "))
        self.receiver = reply.get("status") or {}
        app = current_app(self.receiver)
        if app is None or app.get("appId") != want:
            raise CastError(f"{APP_NAMES[want]} did not start on the device")
        if app.get("sessionId") != self.app_session:
            self.loaded = self.media_session = None
        self.app_session, self.app_id, self.owns_app = app.get("sessionId"), want, True
        self.sharer.decide(time.monotonic(), facts_of(self.receiver, self.app_session))  # castd holds the TV now
        self.log.info("cast app started", device=self.spec, app=APP_NAMES[want])
        self._report(self)
        return True

    def _one_tv(self, other: str) -> None:
        """Another link drives this TV (one identity per device: castd/cast/worker.py); this one ends."""
        self.quit.set()
        if other.startswith("handed over"):
            self.log.info("cast device already has a link; the session goes to it", device=self.spec, note=other)
        else:  # the same TV twice in one session: cast once; this spec's entry says why
            self.given_up = True
            self._set("failed", other)
        raise Interrupted()

    # ---- sharing the TV -------------------------------------------------------------------------
    def _wait_for_a_free_tv(self, decision: Decision, conn: CastConnection, check: Callable[[], bool]) -> None:
        """Send the TV nothing (but GET_STATUS) until what castd knows of it changes, the plan changes
        or the connection drops; then the loop decides again."""
        facts = facts_of(self.receiver, self.app_session)
        self.other_app = facts.app_name if facts.busy else None
        if self.state != "waiting":
            self.log.info("the cast device is not free; castd waits", device=self.spec, reason=decision.reason)
        self._set("waiting", decision.reason)
        asked = time.monotonic()

        def ask() -> None:
            nonlocal asked
            if time.monotonic() - asked >= WAIT_POLL:
                asked = time.monotonic()
                conn.send(NS_RECEIVER, {"type": "GET_STATUS"}, app=False)

        for namespace, data in self._inbox(conn, check, idle=ask):
            if namespace == NS_RECEIVER and data.get("type") == "RECEIVER_STATUS":
                self.receiver = data.get("status") or {}
                if facts_of(self.receiver, self.app_session) != facts:
                    return

    def _covered(self, decision: Decision, now: float) -> None:
        """The idle screen (or standby) covered castd's session: LAUNCH and LOAD again, counted."""
        self.sharer.reloaded(now, facts_of(self.receiver, self.app_session))
        self.reloads += 1
        self.reload_reason = decision.reason
        self.reload_wanted = True
        self.loaded = None
        self.log.warning("the idle screen or standby covered castd's session; loading it again", device=self.spec,
                         reason=decision.reason, reloads=self.reloads)

    def _volume_command(self, conn: CastConnection, volume: dict, check: Callable[[], bool] | None) -> None:
        payload = {"type": "SET_VOLUME", "volume": volume}
        if check is None:  # from the watch: no reply awaited (it arrives as a RECEIVER_STATUS)
            conn.send(NS_RECEIVER, payload, app=False)
            return
        reply = conn.request(NS_RECEIVER, payload, app=False, timeout=COMMAND_TIMEOUT, interrupted=check)
        if reply.get("type") == "RECEIVER_STATUS":
            self.receiver = reply.get("status") or self.receiver

    def _set_volume_for_launch(self, conn: CastConnection, check: Callable[[], bool]) -> None:
        """volume, mute, silent_start: set before castd's app starts (a silent start mutes its chime)."""
        sharing = self.sharing
        change: dict = {}
        if sharing.volume is not None:
            change["level"] = sharing.volume / 100
        if sharing.silent_start:
            change["muted"] = True
            self.silenced = True
        elif sharing.mute is not None:
            change["muted"] = sharing.mute
        if not change:
            return
        if self.saved_volume is None:
            tv = self.receiver.get("volume") or {}
            self.saved_volume = {k: tv[k] for k in ("level", "muted") if k in tv}
        self._volume_command(conn, change, check)
        self.log.info("cast device volume set", device=self.spec, **{k: v for k, v in change.items()})

    def _unsilence(self) -> None:
        """silent_start: the picture plays, so the sound comes back (to `mute`, else to what it was)."""
        conn = self.conn
        if not self.silenced or conn is None:
            return
        self.silenced = False
        muted = self.sharing.mute if self.sharing.mute is not None else \
            bool((self.saved_volume or {}).get("muted", False))
        try:
            self._volume_command(conn, {"muted": muted}, None)
        except CastError as exc:
            self.log.warning("could not unmute the cast device", device=self.spec, error=str(exc))

    def _restore_volume(self, conn: CastConnection | None) -> None:
        """restore_volume: the TV's own volume back, once, when castd ends or steps aside."""
        saved, self.saved_volume = self.saved_volume, None
        silenced, self.silenced = self.silenced, False
        if not saved or conn is None or not conn.connected():
            return
        if not self.sharing.restore_volume:  # a silent start that never played is not left muted
            saved = {"muted": saved.get("muted", False)} if silenced else {}
        if not saved:
            return
        try:
            self._volume_command(conn, saved, None)
            self.log.info("cast device volume restored", device=self.spec, **saved)
        except CastError as exc:
            self.log.warning("could not restore the cast device's volume", device=self.spec, error=str(exc))

    # ---- the stream (hls) and the page (direct) -----------------------------------------------
    def _ensure_stream(self, plan: Plan, conn: CastConnection, check: Callable[[], bool]) -> None:
        assert self.base is not None and plan.stream_path is not None
        url = self.base + plan.stream_path
        self.stream_url = url
        if self.loaded == url and self.media_session is not None and self.media_verified_gen == conn.generation:
            return
        reply = conn.request(NS_MEDIA, {"type": "GET_STATUS"}, app=True, timeout=COMMAND_TIMEOUT, interrupted=check)
        entries = reply.get("status") or [] if reply.get("type") == "MEDIA_STATUS" else []
        for entry in entries if not self.reload_wanted else []:  # a stuck player is LOADed again
            if content_id(entry) == url and entry.get("playerState") in PLAYING_STATES:
                self.media_session, self.loaded = entry.get("mediaSessionId"), url
                self.media_verified_gen = conn.generation
                self.log.info("cast device still plays the stream", device=self.spec, state=entry.get("playerState"))
                self._media_state(entry.get("playerState"))
                self._seen_media(entry)
                return
        self.ended_by_us.update(e.get("mediaSessionId") for e in entries if e.get("mediaSessionId") is not None)
        if self.media_session is not None:
            self.ended_by_us.add(self.media_session)
        self.media_session = self.loaded = None
        self.reload_wanted = False
        if self.watch is not None:
            self.watch.reset()
        self._set("loading", None)
        started = time.monotonic()
        reply = conn.request(NS_MEDIA, load_request(url, plan.title, self.app_session or ""), app=True,
                             timeout=self.config.cast_load_timeout, interrupted=check)
        kind = reply.get("type")
        entries = reply.get("status") or []
        if kind == "MEDIA_STATUS" and entries and (entries[0].get("playerState") in PLAYING_STATES
                                                    or not entries[0].get("idleReason")):  # IDLE: still loading
            self.media_session, self.loaded = entries[0].get("mediaSessionId"), url
            self.media_verified_gen = conn.generation
            self.load_deadline = started + self.config.cast_load_timeout
            self.log.info("stream loaded on the cast device", device=self.spec, url=url,
                     seconds=round(time.monotonic() - started, 2))
            self._media_state(entries[0].get("playerState"))
            self._seen_media(entries[0])
            return
        if kind == "LOAD_CANCELLED":  # a stop on the device, or another sender's LOAD, overtook castd's
            self._terminal("user_stopped", "castd's LOAD was cancelled on the device")
            return
        if kind == "LOAD_FAILED":
            code = reply.get("detailedErrorCode")
            raise CastError("the device could not play the stream: LOAD_FAILED" + (f" (error {code})" if code else ""))
        detail = reply.get("reason") or (entries[0].get("idleReason") if entries else None)
        raise CastError(f"LOAD answered with {kind}" + (f" ({detail})" if detail else ""))

    def _ensure_page(self, plan: Plan, conn: CastConnection) -> None:
        assert plan.page_url is not None
        self.stream_url = plan.page_url
        if self.loaded == plan.page_url:
            return  # DashCast keeps its page across a lost sender connection; its app is still ours
        conn.send(NS_DASHCAST, dashcast_request(plan.page_url, self.app_session or ""), app=True)
        self.loaded = plan.page_url
        self.log.info("page sent to the cast device (DashCast)", device=self.spec, url=plan.page_url)
        self._media_state("PLAYING")

    def _media_state(self, player_state: str | None) -> None:
        if player_state == "PLAYING":
            if self.state != "playing":
                self.playing_since = time.monotonic()
                self.load_deadline = None
                self.log.info("cast device playing", device=self.spec)
                self._unsilence()
            self._set("playing", None)
        elif player_state == "PAUSED":
            self._set("paused", "paused on the device")
        elif self.state not in ("playing", "paused"):
            self._set("loading", "buffering")

    # ---- watching -----------------------------------------------------------------------------
    def _watch(self, plan: Plan, conn: CastConnection, check: Callable[[], bool]) -> None:
        """Read the device's news until something needs the loop (plan change, lost connection, a fault)."""
        for namespace, data in self._inbox(conn, check, idle=lambda: self._tick(conn)):
            if namespace == NS_RECEIVER and data.get("type") == "RECEIVER_STATUS":
                heard = self.receiver.get("volume")
                self.receiver = data.get("status") or {}
                if self.receiver.get("volume") != heard:  # /status and Home Assistant show the TV's volume
                    self.updated_at = time.time()
                    self._report(self)
                facts = facts_of(self.receiver, self.app_session)
                decision = self.sharer.decide(time.monotonic(), facts)
                if decision.act is not Act.CAST or decision.reload or not facts.ours:
                    return  # the loop decides what the change means (step aside, wait, load again)
            elif namespace == NS_MEDIA and plan.mode == "hls" and data.get("type") == "MEDIA_STATUS":
                for entry in data.get("status") or []:
                    self._on_media(entry)
                    if self.terminal:
                        break

    def _inbox(self, conn: CastConnection, check: Callable[[], bool],
               idle: Callable[[], None]) -> Iterator[tuple[str, dict]]:
        """The device's messages as they arrive, until the link is terminal or the connection drops or is
        replaced (the loop then decides again); `idle` runs after every 0.2 s without one; a stop or a
        plan change (`check`) interrupts."""
        while not self.terminal:
            if check():
                raise Interrupted()
            if not conn.connected() or conn.generation != self.verified_gen:
                return
            try:
                message = conn.inbox.get(timeout=0.2)
            except queue.Empty:
                idle()
                continue
            yield message

    def _tick(self, conn: CastConnection) -> None:
        now = time.monotonic()
        if self.watch is not None and self.media_session is not None and self.state in ("playing", "loading"):
            verdict = self.watch.decide(now)
            if verdict is Verdict.ASK:  # the answer arrives in the inbox like any MEDIA_STATUS
                self.watch.asked(now)
                conn.send(NS_MEDIA, {"type": "GET_STATUS", "mediaSessionId": self.media_session}, app=True)
            elif verdict in (Verdict.STUCK_BUFFERING, Verdict.FROZEN):
                self._reload(verdict, self.watch.still_for(now))
        if self.state == "loading" and self.load_deadline is not None and now > self.load_deadline:
            self.load_deadline = None
            self.loaded = None
            self.reload_wanted = True  # a player still BUFFERING gets a fresh LOAD, not "still plays"
            raise CastError(f"the device did not start playing within {self.config.cast_load_timeout:g}s of the LOAD")
        if self.state == "playing" and self.playing_since is not None:
            self.later.working(now - self.playing_since)  # a healthy minute forgives earlier rounds too
        if self.state == "playing" and self.playing_since is not None and self.failures:
            self.backoff.healthy_since(now - self.playing_since)
            if self.backoff.failures == 0:
                self.failures = 0
                self._set("playing", None, force=True)

    def _on_media(self, entry: dict) -> None:
        """Act on one MEDIA_STATUS entry as castd/cast/takeover.py's read_media reads it."""
        news = read_media(entry, self.media_session, self.loaded, self.ended_by_us, self.state == "loading")
        msid, player_state = entry.get("mediaSessionId"), entry.get("playerState")
        if news is News.PLAYER:
            self._media_state(player_state)
            self._seen_media(entry)
        elif news is News.ADOPT:
            self.media_session = msid
            self._media_state(player_state)
        elif news is News.OTHER_SENDER:
            self._terminal("user_stopped", "another sender started other media on the device")
        elif news in (News.VIEWER_STOPPED, News.RECEIVER_ENDED):
            if self.media_session is not None:  # it is castd's session (read_media matched it)
                self.ended_by_us.add(self.media_session)
            self.media_session = self.loaded = None
            reason = entry.get("idleReason")
            if news is News.VIEWER_STOPPED:
                self._terminal("user_stopped", f"playback was stopped on the device ({reason})")
                return
            raise CastError(f"the receiver stopped playing the stream ({reason or 'no reason given'})")

    def _seen_media(self, entry: dict) -> None:
        """Feed the freeze watch one status of castd's media session; keep /status's media time."""
        current = entry.get("currentTime")
        current = float(current) if isinstance(current, (int, float)) else None
        if self.watch is None:
            return
        self.watch.seen(time.monotonic(), entry.get("playerState"), current)
        if self.watch.advanced_media_time is not None and self.watch.advanced_media_time != self.media_time:
            self.media_time = self.watch.advanced_media_time
            self.media_time_at = time.time()
            if self.media_time_at - self.updated_at >= MEDIA_TIME_REPORT:
                self.updated_at = self.media_time_at
                self._report(self)

    def _reload(self, verdict: Verdict, still: float) -> None:
        """The TV's player is stuck while castd's stream plays on: LOAD it again, paced by the sharer (at
        once the first time; again within a minute of the last re-LOAD: 1 s, 2 s, 4 s... up to 30 s)."""
        now = time.monotonic()
        what = "stuck buffering" if verdict is Verdict.STUCK_BUFFERING else "playback stopped advancing"
        delay = self.sharer.frozen(now)
        self.reloads += 1
        self.reload_reason = f"{what} for {still:.1f}s at media time {self.watch.media_time if self.watch else None}"
        self.log.warning("the cast device's player is stuck; loading the stream again", device=self.spec,
                         verdict=verdict.value, seconds=round(still, 1), reloads=self.reloads, delay=delay)
        self.reload_wanted = True
        self.loaded = None
        if delay:
            self.retry_at = now + delay
        self._set("loading", f"reloading: {what}" + (f" (in {delay:g}s)" if delay else ""))
        raise Interrupted()

    # ---- outcomes -----------------------------------------------------------------------------
    def _terminal(self, state: CastState, reason: str) -> None:
        self.terminal = True
        self.sharer.stopped_by_viewer(state, reason)
        self.log.warning("the viewer took the cast device back; castd leaves it alone", device=self.spec,
                    state=state, reason=reason)
        self._set(state, reason)

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self.last_error = str(exc)
        if getattr(exc, "reconnect", False):
            self._close_connection()
        if self.failures > self.config.cast_retries:
            later = self.later.gave_up(None)
            if later is None:  # cast_retry_seconds = 0: the old rule, failed for the session
                self.given_up = True
                self.log.error("cast device failed; giving up for this session", device=self.spec, error=str(exc),
                               tries=self.failures)
                self._set("failed", f"{exc}; gave up after {self.failures} tries")
                return
            self._close_connection()  # nothing to hear from the TV while resting; the next round connects afresh
            self.resting = True
            self.retry_at = time.monotonic() + later
            self.log.error("cast device failed; giving up for now, trying again later", device=self.spec,
                           error=str(exc), tries=self.failures, retry_in=later, rounds=self.later.rounds)
            self._set("retrying", f"{exc}; gave up after {self.failures} tries; trying again in {later:g}s")
            return
        delay = self.backoff.next_delay()
        self.retry_at = time.monotonic() + delay
        self.log.warning("cast device failed; retrying", device=self.spec, error=str(exc), retry_in=delay,
                    failures=self.failures)
        self._set("failed", f"{exc}; retrying in {delay:g}s")

    def _new_round(self) -> None:
        """The rest after a give-up is over and the session still wants the TV: `cast_retries` tries again."""
        self.resting = False
        self.failures = 0
        self.backoff.reset()
        self.log.info("cast device: trying again after a give-up", device=self.spec, rounds=self.later.rounds,
                      last_error=self.last_error)
        self._set("connecting", f"trying again (round {self.later.rounds + 1})")

    def _set(self, state: CastState, reason: str | None, force: bool = False) -> None:
        if force or (state, reason) != (self.state, self.reason):
            self.state, self.reason = state, reason
            self.updated_at = time.time()
            self._report(self)

    # ---- stopping -------------------------------------------------------------------------------
    def _stop_on_device(self, check: Callable[[], bool]) -> None:
        """Stop the media and quit castd's app, but only where the device still shows castd's app."""
        was = self.state
        if self.app_session is None or was == "other_app":
            self._close_connection()
            self._set("stopped", "nothing of castd's was on the device")
            return
        self._set("stopping", None)
        last: Exception | None = None
        for _ in range(2):
            try:
                conn = self._connection(check)
                status = conn.receiver_status(COMMAND_TIMEOUT, check)
                app = current_app(status)
                if app is None or app.get("sessionId") != self.app_session:
                    self.app_session = None
                    self._set("stopped", "the device shows something else; left alone")
                    break
                self._restore_volume(conn)
                if self.media_session is not None and self.app_id in (APP_MEDIA_RECEIVER, None):
                    self.ended_by_us.add(self.media_session)
                    conn.request(NS_MEDIA, {"type": "STOP", "mediaSessionId": self.media_session}, app=True,
                                 timeout=COMMAND_TIMEOUT, interrupted=check)
                conn.request(NS_RECEIVER, {"type": "STOP", "sessionId": self.app_session}, app=False,
                             timeout=COMMAND_TIMEOUT, interrupted=check)
                self.log.info("cast stopped; castd's app quit", device=self.spec)
                self.app_session = self.media_session = self.loaded = None
                self._set("stopped", "castd's app was quit")
                break
            except (CastError, NotFound, Unreachable) as exc:
                last = exc
                if getattr(exc, "reconnect", True):
                    self._close_connection()
        else:
            self.log.warning("could not stop the cast device", device=self.spec, error=str(last))
            self._set("stopped", f"could not reach the device to stop it: {last}")
        self._close_connection()

    # ---- waiting ----------------------------------------------------------------------------------
    def _idle(self, check: Callable[[], bool]) -> None:
        """Nothing to do until the plan changes: drop the device's news meanwhile."""
        while not check():
            conn = self.conn
            if conn is not None:
                try:
                    while True:
                        conn.inbox.get_nowait()
                except queue.Empty:
                    pass
            time.sleep(0.1)

    def _sleep_until(self, when: float, check: Callable[[], bool]) -> bool:
        while time.monotonic() < when:
            if check():
                return False
            time.sleep(0.05)
        return True


def replace(plan: Plan, **changes) -> Plan:
    return dataclasses.replace(plan, **changes)


class RecentIds:
    """A set that keeps only its `keep` newest members: media session ids castd ended. A receiver's ids
    only grow, and only the last few can show up again in a MEDIA_STATUS; a plain set grew by one per LOAD
    for as long as castd ran (a playlist switching every 30 s: ~90,000 a month)."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self._ids: dict[int, None] = {}  # insertion-ordered: the oldest first

    def add(self, item: int) -> None:
        self._ids.pop(item, None)
        self._ids[item] = None
        while len(self._ids) > self.keep:
            del self._ids[next(iter(self._ids))]

    def update(self, items: Iterable[int]) -> None:
        for item in items:
            self.add(item)

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)
