"""Running the daemon: uvicorn serving castd's app, speaking to systemd, exiting 0 on SIGTERM."""

from __future__ import annotations

import signal

import uvicorn

from castd import __version__
from castd.api.app import create_app
from castd.api.auth import is_loopback_host
from castd.config import Config
from castd.logs import intercept_stdlib, log, register_secret, setup_logging
from castd.sdnotify import notify


class NotifyingServer(uvicorn.Server):
    """uvicorn's server, telling systemd READY=1 once its sockets accept connections."""

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            notify("READY=1\nSTATUS=serving")


def run(config: Config, demo: bool = False) -> int:
    setup_logging(config.log_level)
    intercept_stdlib("WARNING")
    for secret in config.log_secrets():  # the token, the broker's and the cameras' passwords
        register_secret(secret)
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
    server.run()
    if not server.started:
        log.error("castd could not start serving", host=config.host, port=config.port)
        return 1
    log.info("castd stopped")
    return 0
