"""The `castd` command line: `castd serve` runs the daemon."""

from __future__ import annotations

import argparse
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
    devices = sub.add_parser("devices", help="list the Cast devices castd can see and what they are doing",
                             description="Listen for Cast devices by mDNS (plus the hosts in `device` of the "
                                         "config) and ask each what it shows.")
    devices.add_argument("--config", metavar="FILE", help="TOML config (default: /etc/castd/castd.toml if present)")
    devices.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                         help="how long to listen for mDNS answers (config: mdns_timeout)")
    devices.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "serve":
        return serve(args)
    if args.command == "devices":
        return list_devices(args)
    return 2


def list_devices(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"castd: config error: {exc}", file=sys.stderr)
        return 2
    if args.timeout is not None and not 0 < args.timeout <= 60:
        print("castd: --timeout must be between 0 and 60 seconds", file=sys.stderr)
        return 2
    import logging

    import msgspec

    from castd.cast.discovery import discover

    logging.getLogger("pychromecast").setLevel(logging.CRITICAL)  # castd reports failures itself
    found = discover(config, args.timeout or config.mdns_timeout)
    if args.json:
        print(msgspec.json.encode(found).decode())
        return 0
    if not found:
        print("no Cast devices found")
        return 0
    rows = [("DEVICE", "MODEL", "ADDRESS", "UUID", "DOING")]
    for info in found:
        doing = info.app_name or info.app_id or info.activity if info.activity == "other_app" else info.activity
        rows.append((info.device, info.model or "-", f"{info.host}:{info.port}", info.uuid or "-",
                     doing + (f" ({info.error})" if info.error else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    return 0


def serve(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, overrides={"host": args.host, "port": args.port,
                                                     "log_level": args.log_level, "insecure": args.insecure})
    except ConfigError as exc:
        print(f"castd: config error: {exc}", file=sys.stderr)
        return 2
    from castd.api.auth import listen_refusal

    refusal = listen_refusal(config)
    if refusal:
        print(f"castd: {refusal}", file=sys.stderr)
        return 2
    from castd import server

    return server.run(config, demo=args.demo)
