"""A real MQTT broker for the tests (Debian's mosquitto) and a paho client that plays Home Assistant.

`Mosquitto` writes its own config (a free loopback port; optionally a password file made with
mosquitto_passwd, or TLS with a throwaway CA and server certificate made with openssl), starts the
broker, and stops it by PID (the kernel stops it too if the test process is killed: PR_SET_PDEATHSIG).
`Watcher` is a paho-mqtt client that records every message on the topics it subscribes to and
publishes like Home Assistant does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from castd.procutil import with_pdeathsig

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it: (ca.crt, server.crt, server.key)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    key, csr, crt = folder / "server.key", folder / "server.csr", folder / "server.crt"
    ext = folder / "server.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\n"
                   "keyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2", "-subj", "/CN=castd test CA")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return ca_crt, crt, key


@dataclass
class Mosquitto:
    """One mosquitto process on 127.0.0.1:<port>, configured by the test, ended by PID."""

    folder: Path
    users: dict[str, str] = field(default_factory=dict)  # name -> password; empty: anonymous allowed
    tls: bool = False
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen | None = None
    ca_file: Path | None = None

    def write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice", "log_type information",
                 "connection_messages true", "max_keepalive 65535"]
        if os.geteuid() == 0:  # as root, mosquitto would switch to its own user, who cannot read our files
            lines.append("user root")
        if self.users:
            passwd = self.folder / "passwd"
            passwd.write_text("")
            for user, password in self.users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), user, password], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
            passwd.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            if self.ca_file is None:
                self.ca_file, crt, key = make_ca(self.folder / "tls")
            else:
                crt, key = self.folder / "tls" / "server.crt", self.folder / "tls" / "server.key"
            lines += [f"cafile {self.ca_file}", f"certfile {crt}", f"keyfile {key}"]
        conf = self.folder / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    @property
    def log_path(self) -> Path:
        return self.folder / "mosquitto.log"

    def start(self) -> "Mosquitto":
        conf = self.write_config()
        log = self.log_path.open("ab")
        # the broker dies with the test process even when that is killed (no fixture teardown then); setpriv
        # sets that, not a preexec_fn (Python in a forked copy of a threaded process: castd/procutil.py)
        self.process = subprocess.Popen(with_pdeathsig([MOSQUITTO, "-c", str(conf)], signal.SIGTERM), stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"mosquitto did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self):
        return json.loads(self.payload)


class Watcher:
    """A paho client (like Home Assistant's): subscribes, records every message, publishes."""

    def __init__(self, broker: Mosquitto, *topics: str, username: str | None = None,
                 password: str | None = None, client_id: str = "") -> None:
        self.broker = broker
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"watcher-{id(self)}")
        if username:
            self.client.username_pw_set(username, password)
        if broker.tls:
            self.client.tls_set(ca_certs=str(broker.ca_file))
        self.topics = topics
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 2)  # back soon after a broker restart
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise AssertionError("the test's MQTT client could not connect")

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        for topic in self.topics:
            client.subscribe(topic, qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append(Received(message.topic, bytes(message.payload), bool(message.retain),
                                          time.monotonic()))

    def publish(self, topic: str, payload: bytes | str, retain: bool = False, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def on(self, topic: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def last(self, topic: str) -> Received | None:
        found = self.on(topic)
        return found[-1] if found else None

    def wait(self, topic: str, predicate=lambda m: True, timeout: float = 20.0, after: float = 0.0) -> Received:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.on(topic)):
                if message.at >= after and predicate(message):
                    return message
            time.sleep(0.05)
        raise AssertionError(f"no matching message on {topic} within {timeout}s; last: {self.last(topic)}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def mqtt_env(broker: Mosquitto, node: str, **extra: str) -> dict[str, str]:
    """The environment that points a castd at `broker` as node `node`; `extra` adds CASTD_MQTT_<KEY> values
    (groups="shop", keepalive="10", control="with-login", ...). Without a username, control = "always"."""
    env = {"CASTD_MQTT_HOST": "127.0.0.1", "CASTD_MQTT_PORT": str(broker.port), "CASTD_MQTT_NODE_ID": node}
    if "username" not in extra:  # an anonymous test broker: control is off unless turned on, as a user does
        env["CASTD_MQTT_CONTROL"] = "always"
    env.update({f"CASTD_MQTT_{k.upper()}": v for k, v in extra.items()})
    return env


def retained(broker: Mosquitto, topic: str, timeout: float = 10.0) -> Received:
    """What the broker keeps retained on `topic`, as a new subscriber (Home Assistant starting) gets it."""
    watcher = Watcher(broker, topic)
    try:
        message = watcher.wait(topic, timeout=timeout)
        assert message.retain, f"{topic}: not retained"
        return message
    finally:
        watcher.close()
