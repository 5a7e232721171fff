"""Advertise a fake device as `_googlecast._tcp.local.` on the loopback interface only."""

from __future__ import annotations

import socket
from uuid import UUID

from zeroconf import IPVersion, ServiceInfo, Zeroconf

SERVICE_TYPE = "_googlecast._tcp.local."


def loopback_zeroconf() -> Zeroconf:
    """A Zeroconf bound to 127.0.0.1 only: nothing leaves the machine. Close it when done."""
    return Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)


def service_info(*, name: str, model: str, uuid: UUID, host: str, port: int, status_text: str = "") -> ServiceInfo:
    """The record set a real Cast device announces.

    pychromecast.discovery reads only `id` (the UUID, required), `md` (model) and `fn` (friendly name)
    from TXT, plus the SRV port and A address. Note that it also classifies any service whose port is not
    8009 as a cast group (CAST_TYPE_GROUP) without asking the device.
    """
    properties = {
        "id": uuid.hex,
        "cd": uuid.hex[:32].upper(),
        "rm": "",
        "ve": "05",
        "md": model,
        "ic": "/setup/icon.png",
        "fn": name,
        "ca": "4101",
        "st": "0",
        "bs": "FA8F" + uuid.hex[:8].upper(),
        "nf": "1",
        "rs": status_text,
    }
    return ServiceInfo(
        SERVICE_TYPE,
        f"{model.replace(' ', '-')}-{uuid.hex}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton(host)],
        port=port,
        properties=properties,
        server=f"{uuid}.local.",
    )


class Advertiser:
    """Registers one ServiceInfo; owns its Zeroconf unless one was given."""

    def __init__(self, info: ServiceInfo, zeroconf_instance: Zeroconf | None = None) -> None:
        self.info = info
        self._own = zeroconf_instance is None
        self.zeroconf = zeroconf_instance or loopback_zeroconf()
        try:
            # cooperating_responders skips the ~1.5 s uniqueness probe; the name contains a fresh UUID.
            self.zeroconf.register_service(info, cooperating_responders=True)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        zc, self.zeroconf = self.zeroconf, None
        if zc is None:
            return
        try:
            zc.unregister_service(self.info)
        except Exception:
            pass
        if self._own:
            zc.close()
