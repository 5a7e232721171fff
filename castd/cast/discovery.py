"""Discovery for `GET /devices` and `castd devices`: the devices mDNS finds plus the configured hosts,
and what each is doing (asked over the Cast channel: the app on screen).

The front end runs this in a short-lived child process (child_main): pychromecast never runs there.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal

import msgspec

from castd.cast import mdns
from castd.cast.connection import CastConnection, CastError
from castd.cast.devices import NotFound, Resolved, host_ip
from castd.cast.info import PROBE_TIMEOUT, DeviceInfo, DiscoveryJob
from castd.cast.link import current_app
from castd.specs import parse_spec
from castd.config import Config



def _candidates(config: Config, seconds: float) -> list[DeviceInfo]:
    found = mdns.browse(config.mdns_interfaces, seconds)
    names = [f.name for f in found]
    infos = [DeviceInfo(name=f.name, model=f.model, host=f.host, port=f.port, uuid=f.uuid, source="mdns",
                        device=f.name if f.name and names.count(f.name) == 1 else f.uuid) for f in found]
    for text in config.default_devices():
        spec = parse_spec(text)
        if spec.kind != "host" or spec.host is None:
            continue
        try:
            address = host_ip(spec.host)
        except NotFound as exc:
            infos.append(DeviceInfo(name=None, host=spec.host, port=spec.port, source="config", device=text,
                                    activity="unreachable", error=str(exc)))
            continue
        if not any(i.host == address and i.port == spec.port for i in infos):
            infos.append(DeviceInfo(name=None, host=address, port=spec.port, source="config", device=text))
    return infos


def _probe(info: DeviceInfo, timeout: float) -> DeviceInfo:
    if info.activity == "unreachable":
        return info
    conn = CastConnection(Resolved(info.device, info.host, info.port, info.name, info.uuid, info.model), timeout)
    try:
        conn.start()
        if not conn.wait_connected(timeout, lambda: False):
            info.activity, info.error = "unreachable", conn.failure()
            return info
        app = current_app(conn.receiver_status(timeout))
    except CastError as exc:
        info.activity, info.error = "unreachable", str(exc)
        return info
    finally:
        conn.close()
    if app is None:
        info.activity = "idle"
    else:
        info.activity, info.app_id, info.app_name = "other_app", app.get("appId"), app.get("displayName")
    return info


def discover(config: Config, seconds: float) -> list[DeviceInfo]:
    """Listen to mDNS for `seconds`, add the configured hosts, ask each device what it shows."""
    infos = _candidates(config, seconds)
    if not infos:
        return []
    timeout = min(PROBE_TIMEOUT, config.cast_connect_timeout)
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(infos))) as pool:
        return list(pool.map(lambda info: _probe(info, timeout), infos))


def child_main(conn, payload: bytes) -> None:
    """Entry point of the discovery child: one answer on the pipe, then exit."""
    from castd.procutil import set_pdeathsig

    set_pdeathsig(signal.SIGKILL)
    # Ctrl-C reaches every process of the terminal's group, this one too (it shares the front end's group):
    # the front end ends it (a kill once it answered or its deadline passed; SIGKILL if the front end dies),
    # not a KeyboardInterrupt traceback in the middle of a scan, as for every other castd child
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    job = msgspec.msgpack.decode(payload, type=DiscoveryJob)
    config = msgspec.msgpack.decode(job.config_bytes, type=Config)
    try:
        result: object = discover(config, job.seconds)
    except Exception as exc:
        result = f"{type(exc).__name__}: {exc}"
    try:
        conn.send_bytes(msgspec.msgpack.encode(result))
    finally:
        conn.close()
        os._exit(0)
