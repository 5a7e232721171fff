"""Every topic castd reads or writes on its broker, in one place (the discovery payload, the client
and the tests all take them from here, so a topic named in discovery is a topic castd serves).

    <base>/start        in   the JSON of POST /start
    <base>/stop         in   empty, {} or {"token": ...} (the body of POST /stop)
    <base>/reload       in   load the current page again
    <base>/url/set      in   a bare URL (Home Assistant's `text` entity): start it with the defaults
    <base>/select/set   in   a dashboard name, else a URL from the history (the `select` entity)
    <base>/camera/set   in   a camera name: that camera full screen, in the running session (the `camera` select)
    <group>/<g>/start   in   as <base>/start, for every castd in group <g>
    <group>/<g>/stop    in   as <base>/stop
    <prefix>/status     in   Home Assistant's birth message: `online` -> announce again
    <base>/state        out  retained: /status without secrets, plus fields for Home Assistant
    <base>/availability out  retained: online, and offline (also as the broker-sent last will)
    <base>/error        out  not retained: {"error", "status", "topic"} for every refused message
    <base>/snapshot     out  not retained: JPEG bytes of the picture being cast
    <prefix>/device/<node_id>/config  out  retained: Home Assistant device discovery
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from castd.mqtt.settings import MqttSettings


class Inbound(Enum):
    """What a message on one of castd's subscribed topics asks for."""

    START = "start"
    STOP = "stop"
    RELOAD = "reload"
    URL = "url"
    SELECT = "select"
    CAMERA = "camera"  # a [cameras.NAME] name: that camera full screen (the `camera` select entity)
    TAKEOVER = "takeover"  # a setting (retained is welcome): when-idle ON/OFF for the starts made over MQTT
    VOLUME = "volume"  # a setting: the volume (0-100, "None": leave it alone) for the starts made over MQTT
    HA_STATUS = "ha_status"

    @property
    def setting(self) -> bool:
        """A setting, not an action: a retained message is welcome (it survives castd's restarts)."""
        return self in (Inbound.TAKEOVER, Inbound.VOLUME)


@dataclass(frozen=True)
class Topics:
    base: str
    node_id: str
    discovery_prefix: str
    group_base: str
    groups: tuple[str, ...]

    @classmethod
    def of(cls, settings: MqttSettings) -> "Topics":
        return cls(base=settings.resolved_base_topic(), node_id=settings.resolved_node_id(),
                   discovery_prefix=settings.discovery_prefix, group_base=settings.group_topic,
                   groups=tuple(settings.groups))

    # ---- out ----------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def error(self) -> str:
        return f"{self.base}/error"

    @property
    def snapshot(self) -> str:
        return f"{self.base}/snapshot"

    @property
    def discovery(self) -> str:
        return f"{self.discovery_prefix}/device/{self.node_id}/config"

    # ---- in -----------------------------------------------------------------------------------
    @property
    def start(self) -> str:
        return f"{self.base}/start"

    @property
    def stop(self) -> str:
        return f"{self.base}/stop"

    @property
    def reload(self) -> str:
        return f"{self.base}/reload"

    @property
    def url_set(self) -> str:
        return f"{self.base}/url/set"

    @property
    def select_set(self) -> str:
        return f"{self.base}/select/set"

    @property
    def camera_set(self) -> str:
        return f"{self.base}/camera/set"

    @property
    def takeover_set(self) -> str:
        return f"{self.base}/takeover/set"

    @property
    def volume_set(self) -> str:
        return f"{self.base}/volume/set"

    @property
    def ha_status(self) -> str:
        return f"{self.discovery_prefix}/status"

    def group_start(self, group: str) -> str:
        return f"{self.group_base}/{group}/start"

    def group_stop(self, group: str) -> str:
        return f"{self.group_base}/{group}/stop"

    def control(self) -> dict[str, Inbound]:
        """The control topics castd subscribes to, and what each asks for."""
        topics = {self.start: Inbound.START, self.stop: Inbound.STOP, self.reload: Inbound.RELOAD,
                  self.url_set: Inbound.URL, self.select_set: Inbound.SELECT, self.camera_set: Inbound.CAMERA,
                  self.takeover_set: Inbound.TAKEOVER, self.volume_set: Inbound.VOLUME}
        for group in self.groups:
            topics[self.group_start(group)] = Inbound.START
            topics[self.group_stop(group)] = Inbound.STOP
        return topics
