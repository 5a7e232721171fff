"""The `castd` command line: `castd serve` runs the daemon; the other subcommands help run it.

Exit codes: 0 ok, 1 failure, 2 usage (bad arguments or config; argparse also exits 2).
Client subcommands (start, stop, status, devices) live in castd.client.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources

from castd import __version__
from castd.client.commands import add_client_commands
from castd.client.commands import run as client_run
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
    add_client_commands(sub)
    sub.add_parser("config-example", help="print a commented example config file",
                   description="Print a commented castd.toml showing every key and its default.")
    doctor = sub.add_parser("doctor", help="check that this machine can run castd",
                            description="Check Chromium, chromedriver, Xvfb, codecs, the runtime dir, the "
                                        "config, the device and the token; print OK/FAIL with the fix.")
    doctor.add_argument("--config", metavar="FILE", help="TOML config (default: /etc/castd/castd.toml if present)")
    forget = sub.add_parser("mqtt-forget", help="remove castd's device from Home Assistant (MQTT)",
                            description="Publish an empty retained discovery message for this castd (Home "
                                        "Assistant then removes its device) and clear its retained state and "
                                        "availability on the broker of the [mqtt] config. A running castd "
                                        "announces itself again when it reconnects: stop it, or set "
                                        "mqtt.enabled = false, first.")
    forget.add_argument("--config", metavar="FILE", help="TOML config (default: /etc/castd/castd.toml if present)")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `castd status | head`: the reader left; not an error worth a traceback
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "serve":
        return serve(args)
    if args.command == "config-example":
        sys.stdout.write(resources.files("castd").joinpath("example.toml").read_text(encoding="utf-8"))
        return 0
    if args.command == "doctor":
        from castd.doctor import main as doctor

        return doctor(args.config)
    if args.command == "mqtt-forget":
        return mqtt_forget(args)
    return client_run(args.func, args)


def mqtt_forget(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"castd: config error: {exc}", file=sys.stderr)
        return 2
    if not config.mqtt.host:
        print("castd: no MQTT broker configured (mqtt.host is empty)", file=sys.stderr)
        return 2
    import asyncio

    import aiomqtt

    from castd.mqtt.client import describe, forget

    try:
        topics = asyncio.run(asyncio.wait_for(forget(config.mqtt), 30))
    except (aiomqtt.MqttError, asyncio.TimeoutError) as exc:
        print(f"castd: could not reach the broker {config.mqtt.host}:{config.mqtt.resolved_port()}: "
              f"{describe(exc, config.mqtt) if isinstance(exc, aiomqtt.MqttError) else 'timed out'}",
              file=sys.stderr)
        return 1
    print(f"castd: removed device {topics.node_id} from Home Assistant ({topics.discovery}) and cleared "
          f"{topics.state} and {topics.availability}")
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
