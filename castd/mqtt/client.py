"""castd's MQTT client: one task in the front end's event loop, beside uvicorn.

It speaks MQTT through aiomqtt (on paho-mqtt 2.x, the Eclipse client): the protocol, keepalive,
TLS and the last will are theirs, not ours. aiomqtt runs paho's socket on this event loop with
add_reader/add_writer and does the blocking parts of a connect (DNS, TCP, the TLS handshake, reading
the CA file) in an executor thread, so a broker that is down, slow or refusing the login never holds
up an HTTP request; a lost connection is tried again with backoff (0.5 s doubling to 30 s, forgiven
after a healthy minute).

What it does with the connection:
- in: control messages (castd/mqtt/topics.py) become the HTTP API's own commands
  (castd/mqtt/commands.py), sent to the supervisor like a webhook's; a refused one is answered on
  `<base>/error` with the HTTP API's sentence and changes nothing. Retained control messages are
  refused (a stale retained "start" would fire again at every reconnect).
- out: the state (castd/mqtt/state.py), availability (`online`; the broker publishes the will
  `offline` if castd vanishes), Home Assistant discovery (castd/mqtt/discovery.py), sent again on
  every connect and when Home Assistant says `online` on `<prefix>/status`, and a snapshot picture
  while casting.
It learns what castd does only from the supervisor snapshots the front end already keeps
(`on_status`), so it adds no pipe traffic and no polling.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import ssl
import time
from pathlib import Path

import aiomqtt
import anyio
from aiomqtt.exceptions import MqttConnectError
import msgspec

from castd import __version__
from castd.api.control import is_switch
from castd.api.ratelimit import TokenBucket
from castd.api.schemas import MqttState, MqttStatus
from castd.config import Config
from castd.encoder.snapshot import SNAPSHOT_NAME
from castd.logs import log, scrub
from castd.mqtt.commands import Refusal, Setting, interpret
from castd.mqtt.discovery import discovery_payload
from castd.mqtt.settings import MqttSettings
from castd.mqtt.state import StatePlan, state_payload
from castd.sharing import Sharing
from castd.mqtt.topics import Inbound, Topics
from castd.programme.targets import Target
from castd.protocol import LIVE_STATES, Reload, Start, Status, Stop
from castd.children.backoff import Backoff
from castd.api.handle import SupervisorHandle, SupervisorUnavailable
from castd.urls import Allowlist

HISTORY = 10  # recent URLs offered by the select entity when no dashboards are configured
CLOSE_TIMEOUT = 3.0
RESTART_AFTER_BUG = 5.0
SNAPSHOT_SETTLE = 1.5  # after a page change, the first picture that surely shows the new page
LOGIN_REFUSED = {4, 5, 134, 135}  # CONNACK: bad user name or password / not authorized (3.1.1 and 5)


def new_client(settings: MqttSettings, will: aiomqtt.Will | None) -> aiomqtt.Client:
    tls = None
    if settings.tls:
        tls = aiomqtt.TLSParameters(ca_certs=settings.ca_file or None, cert_reqs=ssl.CERT_REQUIRED,
                                    tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return aiomqtt.Client(settings.host, settings.resolved_port(), username=settings.username or None,
                          password=settings.password or None, identifier=settings.resolved_client_id(),
                          will=will, keepalive=settings.keepalive, tls_params=tls, timeout=10,
                          clean_session=True, max_queued_incoming_messages=5000)


def describe(exc: BaseException, settings: MqttSettings) -> str:
    """A failed or lost connection, in words a person can act on."""
    if isinstance(exc, MqttConnectError):
        rc = getattr(exc.rc, "value", exc.rc)
        if rc in LOGIN_REFUSED:
            return (f"the broker refused castd's login ({exc}): check mqtt.username and mqtt.password"
                    + ("" if settings.username else " (none is set)"))
        return f"the broker refused the connection: {exc}"
    text = str(exc) or type(exc).__name__
    if exc.__cause__ is not None and "Disconnected" in text:
        return f"the connection to the broker was lost ({exc.__cause__})"
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return f"TLS: the broker's certificate is not trusted ({text}): check mqtt.ca_file"
    return text


def configuration_url(config: Config) -> str:
    """castd's preview page, as a person in Home Assistant would open it."""
    if config.stream_host:
        host = config.stream_host if ":" in config.stream_host else f"{config.stream_host}:{config.port}"
        return f"http://{host}/"
    host = config.host if config.host not in ("0.0.0.0", "::", "") else socket.gethostname()
    return f"http://{f'[{host}]' if ':' in host else host}:{config.port}/"


async def forget(settings: MqttSettings) -> Topics:
    """Remove castd's device from Home Assistant and clear its retained topics (castd mqtt-forget)."""
    topics = Topics.of(settings)
    # its own client id: the broker would drop a running castd that has castd's (and it would announce again)
    settings = msgspec.structs.replace(settings, client_id=f"{settings.resolved_client_id()}-forget")
    async with new_client(settings, will=None) as client:
        for topic in (topics.discovery, topics.state, topics.availability):
            await client.publish(topic, b"", qos=1, retain=True)
    return topics


class MqttBridge:
    """castd on its broker. Invariant: at most one connection, and it is owned by the one `_run` task."""

    def __init__(self, config: Config, handle: SupervisorHandle, allowlist: Allowlist, sessions_dir: Path) -> None:
        self.config, self.settings = config, config.mqtt
        self.handle, self.allowlist, self.sessions_dir = handle, allowlist, sessions_dir
        self.topics = Topics.of(self.settings)
        self.control = self.topics.control() if self.settings.accepts_control() else {}
        if self.settings.active and self.settings.control_off_because():
            log.info("mqtt control topics are off; castd only reports", why=self.settings.control_off_because())
        self.state: MqttState = "connecting" if self.settings.active else "off"
        self.connected_since: float | None = None
        self.connects = 0
        self.last_error: str | None = None
        self.retry_at: float | None = None
        self.commands = 0
        self.rejected = 0
        self.history: list[str] = []
        self.sharing = Sharing()  # Home Assistant's takeover switch and volume number, for the starts from MQTT
        # the HTTP API's two buckets, and its rule for which one a start counts in (castd/api/control.py)
        self.start_limiter = TokenBucket(config.rate_limit_burst, config.rate_limit_per_minute)
        self.switch_limiter = TokenBucket(config.switch_rate_limit_burst, config.switch_rate_limit_per_minute)
        self._status = Status()
        self._plan = StatePlan()
        self._pending: dict | None = None  # state payload waiting to go out
        self._discovery_due = True
        self._snapshot_due = False
        self._snapshot_after = 0.0
        self._snapshot_mtime = 0.0
        self._snapshot_url: str | None = None
        self._wake = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task | None = None
        self._logged_error: str | None = None
        self._closing = False

    # ---- the front end's two hooks ----------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run() if self.settings.active else self._forget_once(),
                                         name="castd-mqtt")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task) -> None:
        """A bug that escaped the loop: say so, and start again in a while (MQTT is not given up)."""
        if self._closing or task.cancelled() or task.exception() is None:
            return
        self.state, self.last_error = "retrying", f"MQTT client ended: {task.exception()!r}"
        self.retry_at = time.monotonic() + RESTART_AFTER_BUG
        log.opt(exception=task.exception()).error("mqtt client ended unexpectedly; starting it again",
                                                   retry_in=RESTART_AFTER_BUG)
        asyncio.get_running_loop().call_later(RESTART_AFTER_BUG, self._start_again)

    def _start_again(self) -> None:
        if not self._closing:
            self.start()

    async def close(self) -> None:
        """Say `offline` (the will is only for an unclean end), disconnect, end the task; bounded."""
        self._closing = True
        client, task = self._client, self._task
        if client is not None and self.state == "connected":
            try:
                await asyncio.wait_for(client.publish(self.topics.availability, b"offline", qos=1, retain=True),
                                       CLOSE_TIMEOUT)
            except (aiomqtt.MqttError, asyncio.TimeoutError) as exc:
                log.warning("mqtt: could not say offline", error=str(exc))
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=CLOSE_TIMEOUT)

    def on_status(self, status: Status) -> None:
        """Called with every supervisor snapshot (in the event loop): decide what goes out, wake the sender."""
        self._status = status
        now = time.monotonic()
        if status.url and status.state in LIVE_STATES and status.url not in self.history \
                and scrub(status.url) == status.url:  # a URL with a secret in it is never offered to others
            self.history = [status.url, *self.history][:HISTORY]
            if not self.config.dashboards:  # the select offers the history
                self._discovery_due = True
        payload = state_payload(status, self.selected(), self.sharing)
        if self._plan.decide(now, payload):
            self._pending = payload
        self._check_snapshot(now, status)
        if self.state == "connected" and (self._pending is not None or self._discovery_due or self._snapshot_due):
            self._wake.set()

    def status(self) -> MqttStatus:
        retry_in = None
        if self.state == "retrying" and self.retry_at is not None:
            retry_in = round(max(0.0, self.retry_at - time.monotonic()), 1)
        return MqttStatus(state=self.state, broker=f"{self.settings.host}:{self.settings.resolved_port()}",
                          tls=self.settings.tls, node_id=self.topics.node_id, base_topic=self.topics.base,
                          connected_since=self.connected_since, connects=self.connects, last_error=self.last_error,
                          retry_in=retry_in, commands=self.commands, rejected=self.rejected)

    # ---- what the entities offer --------------------------------------------------------------
    def options(self) -> list[str]:
        """The select's choices: the configured dashboards by name, else the pages cast lately."""
        if self.config.dashboards:
            return [board.name for board in self.config.dashboards]
        return list(self.history)

    def selected(self) -> str | None:
        status = self._status
        if status.state not in LIVE_STATES:
            return None
        chosen = status.dashboard if self.config.dashboards else status.url
        return chosen if chosen in self.options() else None

    def _discovery(self) -> dict:
        return discovery_payload(self.settings, self.topics, version=__version__,
                                 configuration_url=configuration_url(self.config), options=self.options(),
                                 select_name="Dashboard" if self.config.dashboards else "Recent page",
                                 devices=self.config.default_devices(), cameras=list(self.config.cameras))

    # ---- the connection -----------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = Backoff(first=0.5, cap=30.0, healthy_after=60.0)
        will = aiomqtt.Will(self.topics.availability, b"offline", qos=1, retain=True)
        while True:
            self.state, connected_at = "connecting", None
            try:
                async with new_client(self.settings, will) as client:
                    connected_at = time.monotonic()
                    await self._serve(client)
            except asyncio.CancelledError:
                raise
            except aiomqtt.MqttError as exc:
                self._failed(describe(exc, self.settings), exc)
            except Exception as exc:  # a bug here must not end MQTT for good, nor castd
                log.opt(exception=exc).error("mqtt client failed; reconnecting")
                self._failed(f"internal error: {exc}", exc)
            finally:
                self._client, self.connected_since = None, None
            if connected_at is not None:
                backoff.healthy_since(time.monotonic() - connected_at)
            delay = backoff.next_delay()
            self.state, self.retry_at = "retrying", time.monotonic() + delay
            log.debug("mqtt: next try", broker=self.settings.host, retry_in=delay)
            await asyncio.sleep(delay)

    def _failed(self, error: str, exc: BaseException) -> None:
        was_connected = self.state == "connected"
        self.last_error = error
        if error != self._logged_error or was_connected:  # one line per new problem, not one per retry
            self._logged_error = error
            login = isinstance(exc, MqttConnectError) and \
                getattr(exc.rc, "value", exc.rc) in LOGIN_REFUSED
            (log.error if login else log.warning)(
                "mqtt connection lost; reconnecting" if was_connected else "mqtt connection failed; retrying",
                broker=f"{self.settings.host}:{self.settings.resolved_port()}", error=error)

    async def _serve(self, client: aiomqtt.Client) -> None:
        subscriptions = [(topic, 1) for topic in self.control] + [(self.topics.ha_status, 1)]
        await client.subscribe(subscriptions)
        self._client, self.state = client, "connected"
        self.connected_since, self.retry_at, self._logged_error = time.time(), None, None
        self.connects += 1
        log.info("mqtt connected", broker=f"{self.settings.host}:{self.settings.resolved_port()}",
                 node_id=self.topics.node_id, base_topic=self.topics.base, tls=self.settings.tls,
                 control=bool(self.control), discovery=self.settings.discovery)
        # a new connection: the broker may have lost every retained message (restarted without persistence)
        self._plan.forget()
        self._pending = state_payload(self._status, self.selected(), self.sharing)
        self._discovery_due = True
        await self._publish_due(client)
        await client.publish(self.topics.availability, b"online", qos=1, retain=True)
        sender = asyncio.create_task(self._sender(client))
        try:
            async for message in client.messages:
                await self._on_message(client, message)
        finally:
            sender.cancel()

    async def _sender(self, client: aiomqtt.Client) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._publish_due(client)
            except aiomqtt.MqttError:
                return  # the connection is going; the reader sees it and reconnects
            except Exception:  # a bug in what is published must not stop the next publish
                log.exception("mqtt: publishing failed")

    async def _publish_due(self, client: aiomqtt.Client) -> None:
        if self._discovery_due:
            self._discovery_due = False
            if self.settings.discovery:
                await client.publish(self.topics.discovery, msgspec.json.encode(self._discovery()), qos=1,
                                     retain=True)
        if self._pending is not None:
            payload, self._pending = self._pending, None
            await client.publish(self.topics.state, msgspec.json.encode(payload), qos=1, retain=True)
            self._plan.sent(time.monotonic(), payload)
        if self._snapshot_due:
            self._snapshot_due = False
            await self._publish_snapshot(client)

    # ---- pictures -----------------------------------------------------------------------------
    def _check_snapshot(self, now: float, status: Status) -> None:
        if not self.settings.snapshot_seconds or status.state != "streaming" or not status.session:
            self._snapshot_url = None
            return
        if status.url != self._snapshot_url:  # a new page: its first settled picture goes out at once
            self._snapshot_url, self._snapshot_after = status.url, now + SNAPSHOT_SETTLE
        if now < self._snapshot_after or self._snapshot_due:
            return
        try:
            mtime = os.stat(self.sessions_dir / status.session / SNAPSHOT_NAME).st_mtime
        except OSError:
            return
        if mtime != self._snapshot_mtime:
            self._snapshot_mtime, self._snapshot_due = mtime, True
            self._snapshot_after = now + self.settings.snapshot_seconds

    async def _publish_snapshot(self, client: aiomqtt.Client) -> None:
        session = self._status.session
        if not session:
            return
        try:
            data = await anyio.Path(self.sessions_dir / session / SNAPSHOT_NAME).read_bytes()
        except OSError:
            return
        await client.publish(self.topics.snapshot, data, qos=0, retain=False)

    # ---- control messages ---------------------------------------------------------------------
    async def _on_message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
        if topic == self.topics.ha_status:
            if payload.strip() == b"online":  # Home Assistant (re)started: announce again
                log.info("mqtt: Home Assistant is online; announcing castd again")
                self._discovery_due = True
                self._pending = state_payload(self._status, self.selected(), self.sharing)
                self._wake.set()
            return
        kind = self.control.get(topic)
        if kind is None:
            return
        if message.retain and not kind.setting:
            result: Start | Stop | Reload | Setting | Refusal | None = Refusal(
                400, "retained control messages are ignored (they would act again at every reconnect); "
                     "publish without the retain flag, and clear this one with an empty retained message")
        else:
            result = interpret(kind, payload, self.config, self.allowlist, self.options(), self.sharing,
                               status=self._status)
        if isinstance(result, Setting):
            self.sharing, result = result.sharing, None
            log.info("mqtt setting", topic=topic, takeover=self.sharing.takeover, volume=self.sharing.volume)
            self._pending = state_payload(self._status, self.selected(), self.sharing)
            self._wake.set()
        if isinstance(result, Start):
            result = self._limit(result)
        if result is not None and not isinstance(result, Refusal):
            result = await self._send(topic, kind, result)
        if isinstance(result, Refusal):
            self.rejected += 1
            log.info("mqtt command refused", topic=topic, status=result.status, error=result.message)
            error = {"error": result.message, "status": result.status, "topic": topic}
            await client.publish(self.topics.error, msgspec.json.encode(error), qos=0, retain=False)
        else:
            self.commands += 1

    def _limit(self, command: Start) -> Start | Refusal:
        """Count a start in its bucket, as POST /start does (a page switch in the looser one). Only
        starts that passed every check count: the broker's login is the sender's identity, and garbage
        costs castd nothing, so it must not lock out the next real start."""
        switch = is_switch(self._status, Target(url=command.url, quality=command.quality, mode=command.mode,
                                                devices=tuple(command.devices)))
        wait = (self.switch_limiter if switch else self.start_limiter).take()
        if not wait:
            return command
        kind, keys = ("page switches", "switch_rate_limit_burst and switch_rate_limit_per_minute") if switch else \
            ("starts", "rate_limit_burst and rate_limit_per_minute")
        return Refusal(429, f"too many {kind}; retry in {math.ceil(wait)} s ({keys} in config)")

    async def _send(self, topic: str, kind: Inbound, command: Start | Stop | Reload) -> Refusal | None:
        if isinstance(command, Start):
            log.info("mqtt start", topic=topic, url=command.url, quality=command.quality,
                     duration=command.duration, mode=command.mode, devices=", ".join(command.devices) or None)
        else:
            log.info(f"mqtt {kind.value}", topic=topic)
        try:
            ack = await self.handle.command(command)
        except SupervisorUnavailable as exc:
            return Refusal(503, f"castd is not ready: {exc}")
        if not ack.ok:
            return Refusal(409, ack.error or "refused")
        return None

    async def _forget_once(self) -> None:
        """`enabled = false` with a broker set: take castd's device out of Home Assistant, then stay off."""
        backoff = Backoff(first=1.0, cap=60.0)
        while True:
            try:
                await forget(self.settings)
                log.info("mqtt is turned off; removed castd's device from Home Assistant",
                         broker=self.settings.host, discovery_topic=self.topics.discovery)
                return
            except aiomqtt.MqttError as exc:
                self.last_error = describe(exc, self.settings)
                log.warning("mqtt is turned off, but removing castd's device failed; retrying",
                            error=self.last_error)
            await asyncio.sleep(backoff.next_delay())
