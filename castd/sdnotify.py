"""systemd's notify protocol, spoken directly (a datagram on $NOTIFY_SOCKET; no libsystemd).

READY=1 once serving, STATUS= lines a person reads in `systemctl status castd`, WATCHDOG=1 pings
from the event loop while the supervisor answers the front end's pings (castd/api/app.py,
castd/children/liveness.py: so a wedged loop, or a supervisor the front end cannot bring back, gets
castd restarted), STOPPING=1 on the way out.
"""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send one notification; False when not under systemd (or the socket is gone)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
            sock.connect(address)  # non-blocking: a reader that fell behind (10 datagrams queued) costs a
            sock.sendall(message.encode())  # notification, never the event loop
        return True
    except OSError:
        return False


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None when no watchdog is set."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.5, int(usec) / 2_000_000)
    except ValueError:
        return None
