"""The `castd` command line: `castd serve` runs the daemon."""

from __future__ import annotations

import argparse
import signal
import sys

from castd import __version__
from castd.config import ConfigError, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="castd", description="Put a live web dashboard on a TV on demand.")
    parser.add_argument("--version", action="version", version=f"castd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the daemon (HTTP front end + supervisor)",
                           description="Run castd in the foreground.")
    serve.add_argument("--config", metavar="FILE", help="TOML config (default: /etc/castd/castd.toml if present)")
    serve.add_argument("--host", help="address to listen on (config: host)")
    serve.add_argument("--port", type=int, help="port to listen on (config: port)")
    serve.add_argument("--log-level", help="TRACE, DEBUG, INFO, WARNING or ERROR (config: log_level)")
    serve.add_argument("--insecure", action="store_true", default=None,
                       help="allow listening beyond loopback without a token (config: insecure); "
                            "anyone who can reach the port then controls castd")
    serve.add_argument("--demo", action="store_true",
                       help="cast the embedded demo dashboard as soon as castd is up (no TV needed)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "serve":
        return serve(args)
    return 2


def serve(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, overrides={"host": args.host, "port": args.port,
                                                     "log_level": args.log_level, "insecure": args.insecure})
    except ConfigError as exc:
        print(f"castd: config error: {exc}", file=sys.stderr)
        return 2
    from castd.api.auth import is_loopback_host, listen_refusal

    refusal = listen_refusal(config)
    if refusal:
        print(f"castd: {refusal}", file=sys.stderr)
        return 2
    import uvicorn

    from castd.api.app import create_app
    from castd.logs import intercept_stdlib, log, register_secret, setup_logging

    setup_logging(config.log_level)
    intercept_stdlib("WARNING")
    register_secret(config.token)
    app = create_app(config, demo=args.demo)
    log.info("castd starting", version=__version__, host=config.host, port=config.port,
             runtime_dir=str(app.state.sessions_dir.parent), auth_required=bool(config.token),
             allowlist=len(config.allowlist) or None)
    if not config.token and not is_loopback_host(config.host):
        log.warning("listening beyond loopback WITHOUT a token (--insecure): anyone who can reach this port "
                    "can make castd open any page and can watch the stream", host=config.host)
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, log_config=None,
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
