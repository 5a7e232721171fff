"""Running the daemon: uvicorn serving castd's app, speaking to systemd, exiting 0 on SIGTERM.

Before anything is touched, castd takes an exclusive lock on `<runtime dir>/castd.pid` and binds its
port. A second `castd serve` on the same runtime dir (`sudo castd serve` by hand while the service
runs: both use /run/castd) used to sweep the live session's folder as "stale" at start-up and only
then fail to bind; the running encoder lost its segment folder and crashed. Now the second instance
reads the holder's pid from the lock file, says so, and exits with exitcodes.IN_USE having changed
nothing. The lock is flock(2): the kernel drops it when the holder dies, SIGKILL included, so a
crashed castd never leaves a lock that blocks the next one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import socket
from pathlib import Path

import uvicorn

from castd import __version__
from castd.api.app import create_app
from castd.api.auth import is_loopback_host
from castd import exitcodes
from castd.config import Config, unknown_env
from castd.encoder.sites import site_secrets  # plain code (msgspec, config): no PyAV or selenium
from castd.logs import intercept_stdlib, log, register_secret, setup_logging
from castd.sdnotify import notify


class NotifyingServer(uvicorn.Server):
    """uvicorn's server, telling systemd READY=1 once its sockets accept connections."""

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            notify("READY=1\nSTATUS=serving")


LOCK_NAME = "castd.pid"


class InUse(Exception):
    """Another castd holds the runtime dir (its pid, when the lock file says)."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(pid)
        self.pid = pid


class RuntimeLock:
    """An exclusive flock on `<runtime dir>/castd.pid`, which holds the holder's pid.

    Invariant: while a castd serves, it holds the lock on the file that is at the path; the file is
    removed (under the lock) when it stops. A file unlinked by a stopping holder between our open and
    our flock is noticed (the path no longer names our inode) and opened again."""

    def __init__(self, runtime_dir: Path) -> None:
        self.path = runtime_dir / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "RuntimeLock":
        for _ in range(5):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                    raise
                raise InUse(_read_pid(self.path)) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self.fd = fd
                return self
            os.close(fd)
        raise InUse(_read_pid(self.path))

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts (uvicorn serves on it). As uvicorn binds
    one itself: IPv6 when the host has a colon (`::` takes IPv4 too), else IPv4; `localhost` is 127.0.0.1."""
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
        sock.bind((host or "0.0.0.0", port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def run(config: Config, demo: bool = False) -> int:
    setup_logging(config.log_level)
    intercept_stdlib("WARNING")
    for secret in (*config.log_secrets(), *site_secrets(config.sites)):
        register_secret(secret)  # the supervisor and the encoder register the same (their logs, /status, MQTT)
    for problem in unknown_env():
        log.warning(problem)
    if os.geteuid() == 0:  # castd/encoder/browser.py: Chromium refuses to start as root with its sandbox on
        log.warning("running as root: Chromium runs without its sandbox (--no-sandbox), so a page that breaks "
                    "out of its renderer owns the machine; run castd as its own user (the service's `castd` "
                    "user keeps the sandbox)")
    runtime_dir = config.resolved_runtime_dir()
    try:
        lock = RuntimeLock(runtime_dir).acquire()
    except InUse as exc:
        log.error("another castd is running with this runtime dir; not starting", pid=exc.pid,
                  runtime_dir=str(runtime_dir), hint="stop it first (systemctl stop castd), or give this one "
                  "its own runtime_dir and port")
        return exitcodes.IN_USE
    try:
        try:
            sock = bind(config.host, config.port)
        except OSError as exc:
            log.error("cannot listen; not starting", host=config.host, port=config.port,
                      error=exc.strerror or str(exc), hint="another program holds the port: `ss -ltnp` shows which"
                      if exc.errno == errno.EADDRINUSE else None)
            return exitcodes.IN_USE if exc.errno == errno.EADDRINUSE else exitcodes.FAILURE
        with sock:
            return _serve(config, sock, demo)
    finally:
        lock.release()


def _serve(config: Config, sock: socket.socket, demo: bool) -> int:
    app = create_app(config, demo=demo)
    log.info("castd starting", version=__version__, host=config.host, port=config.port,
             runtime_dir=str(app.state.sessions_dir.parent), auth_required=bool(config.token),
             allowlist=len(config.allowlist) or None)
    if not config.token and not is_loopback_host(config.host):
        log.warning("listening beyond loopback WITHOUT a token (--insecure): anyone who can reach this port "
                    "can make castd open any page and can watch the stream", host=config.host)
    server = NotifyingServer(uvicorn.Config(app, host=config.host, port=config.port, log_config=None,
                                            access_log=False, timeout_graceful_shutdown=3, lifespan="on"))
    # uvicorn re-raises the signal that stopped it once it has shut down; with these no-op
    # handlers underneath, that re-raise is harmless and castd exits 0 as systemd expects.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server.run(sockets=[sock])
    if not server.started:
        log.error("castd could not start serving", host=config.host, port=config.port)
        return exitcodes.FAILURE
    handle = getattr(app.state, "supervisor", None)
    code = handle.exit_code if handle is not None else exitcodes.OK  # non-zero: Restart=on-failure restarts castd
    log.info("castd stopped", exit_code=code or None)
    return code
