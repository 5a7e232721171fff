"""The client subcommands: start, stop, next, previous, status, devices, dashboards.

Each loads the config for the daemon's address and token (same file and CASTD_* variables as
`castd serve`), makes its request, and returns an exit code (castd/exitcodes.py): 0 ok, 1 failure
(castd unreachable, 401 without the token, 409 a request that does not fit what is on screen, 429,
5xx, the session failed), 2 usage (a bad argument, a bad config, or a request castd rejected as
invalid: 400, 403, 404 a name that is not configured, 413, 415, 422), 5 `start --wait` found every TV of
the session waiting for another app (the stream runs; castd casts when the TV is free).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import get_args

from castd.client.http import Client, ClientError, decode_status
from castd.client.progress import TvWaiting, WaitFailed, wait_for_session
from castd.client.render import dashboards_table, devices_table, status_table
from castd import exitcodes
from castd.config import ConfigError, load_config, unknown_env
from castd.presets import PRESETS
from castd.sharing import Takeover

USAGE_STATUSES = {400, 403, 404, 413, 415, 422}  # what was typed or named is wrong


def add_client_commands(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="TOML config (default: /etc/castd/castd.toml if present)")
    common.add_argument("--host", help="castd's address (config: host)")
    common.add_argument("--port", type=int, help="castd's port (config: port)")

    start = sub.add_parser("start", parents=[common],
                           help="cast a web page, a dashboard, a playlist or a camera (POST /start)",
                           description="Ask the running castd to cast URL, or a configured --dashboard, --playlist "
                                       "or --camera.")
    start.add_argument("url", metavar="URL", nargs="?", help="http(s) page to cast")
    start.add_argument("--dashboard", metavar="NAME", help="a [[dashboards]] name instead of a URL")
    start.add_argument("--playlist", metavar="NAME", help="a [[playlists]] name instead of a URL")
    start.add_argument("--camera", metavar="NAME", help="a [cameras.NAME] name: full screen (into the running "
                                                        "session), or with --overlay in a corner over it")
    start.add_argument("--overlay", choices=("top-left", "top-right", "bottom-left", "bottom-right", "off"),
                       help="with --camera: picture-in-picture in this corner over the running session (off: remove)")
    start.add_argument("--overlay-size", type=float, metavar="FRACTION",
                       help="with --overlay: its width as a fraction of the picture's (default: the camera's, 0.5)")
    start.add_argument("--then", choices=("stop", "resume"),
                       help="after --duration: stop (default), or resume what was on screen before")
    start.add_argument("--quality", choices=list(PRESETS), help="preset (default: config quality)")
    start.add_argument("--duration", type=float, metavar="SECONDS", help="end by itself after this long")
    start.add_argument("--device", action="append", metavar="DEVICE",
                       help="cast to this device (name, host or uuid; repeat for several)")
    sharing = start.add_argument_group("sharing the TV", "unset: the dashboard's, the TV's [[tvs]] or the "
                                       "config's keys (README: Sharing the TV)")
    sharing.add_argument("--takeover", choices=get_args(Takeover),
                         help="when-idle: cast only to a TV that runs no other app, and wait otherwise")
    sharing.add_argument("--sticky", action=argparse.BooleanOptionalAction,
                         help="come back when the person's app quits (and step aside again)")
    sharing.add_argument("--wake", action=argparse.BooleanOptionalAction,
                         help="--no-wake: never launch on a TV in standby or on another input; wait for it")
    sharing.add_argument("--volume", type=_volume, metavar="0-100", help="set the TV's volume (default: leave it)")
    sharing.add_argument("--mute", action=argparse.BooleanOptionalAction, help="mute (or --no-mute: unmute) the TV")
    sharing.add_argument("--silent-start", action=argparse.BooleanOptionalAction,
                         help="mute for the launch (no chime), unmute once the picture plays")
    sharing.add_argument("--restore-volume", action=argparse.BooleanOptionalAction,
                         help="put the TV's own volume back when the session ends or steps aside")
    start.add_argument("--wait", action="store_true",
                       help="show each step and return once streaming (or playing, with a device); exit 5 "
                            "when every TV waits for another app")
    start.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                       help="give up waiting after this long (default 60)")
    start.set_defaults(func=cmd_start)

    stop = sub.add_parser("stop", parents=[common], help="stop casting (POST /stop)",
                          description="End the current session, if any.")
    stop.set_defaults(func=cmd_stop)

    for name, verb in (("next", "next"), ("previous", "previous")):
        step = sub.add_parser(name, parents=[common], help=f"the playlist on screen: {verb} item (POST /{name})",
                              description=f"Move the playlist on screen to its {verb} item.")
        step.set_defaults(func=cmd_step, path=f"/{name}")

    status = sub.add_parser("status", parents=[common], help="what castd is doing (GET /status)",
                            description="Show the state of the running castd.")
    status.add_argument("--json", action="store_true", help="print /status as JSON")
    status.set_defaults(func=cmd_status)

    devices = sub.add_parser("devices", parents=[common], help="list cast devices (GET /devices)",
                             description="List the Chromecast / Google TV devices castd can see.")
    devices.add_argument("--json", action="store_true", help="print the list as JSON")
    devices.set_defaults(func=cmd_devices)

    dashboards = sub.add_parser("dashboards", parents=[common], help="list dashboards, playlists, schedules "
                                "(GET /dashboards)",
                                description="List the named dashboards, playlists and schedules of the running "
                                            "castd's config.")
    dashboards.add_argument("--json", action="store_true", help="print the list as JSON")
    dashboards.set_defaults(func=cmd_dashboards)


SHARING_FLAGS = ("takeover", "sticky", "wake", "volume", "mute", "silent_start", "restore_volume")


def _volume(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value}: a volume is 0 to 100")
    return value


def _client(args: argparse.Namespace) -> Client:
    config = load_config(args.config, overrides={"host": args.host, "port": args.port})
    for problem in unknown_env():
        print(f"castd: warning: {problem}", file=sys.stderr)
    return Client.from_config(config)


def run(func, args: argparse.Namespace) -> int:
    """Run one client command, turning config and HTTP failures into a message and an exit code."""
    try:
        return func(_client(args), args)
    except ConfigError as exc:
        print(f"castd: config error: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    except ClientError as exc:
        print(f"castd: {exc.message}", file=sys.stderr)
        return exitcodes.USAGE if exc.status in USAGE_STATUSES else exitcodes.FAILURE
    except WaitFailed as exc:
        print(f"castd: {exc}", file=sys.stderr)
        return exitcodes.FAILURE


def start_body(args: argparse.Namespace) -> dict | None:
    """The JSON of POST /start the flags ask for (None: not exactly one thing to show). Sharing flags not
    given are left out, so the dashboard's, the TV's and the config's keys apply."""
    given = {k: v for k, v in (("url", args.url), ("dashboard", args.dashboard), ("playlist", args.playlist),
                               ("camera", args.camera)) if v}
    if len(given) != 1:
        return None
    body: dict = dict(given)
    body.update({key: getattr(args, key) for key in SHARING_FLAGS if getattr(args, key) is not None})
    if args.overlay:
        body["overlay"] = args.overlay
    if args.overlay_size is not None:
        body["overlay_size"] = args.overlay_size
    if args.then:
        body["then"] = args.then
    if args.quality:
        body["quality"] = args.quality
    if args.duration is not None:
        body["duration"] = args.duration
    if args.device:
        body["device"] = args.device[0] if len(args.device) == 1 else args.device
    return body


def cmd_start(client: Client, args: argparse.Namespace) -> int:
    body = start_body(args)
    if body is None:
        print("castd: give a URL, --dashboard NAME, --playlist NAME or --camera NAME (exactly one)", file=sys.stderr)
        return 2
    answer = client.post("/start", body)
    verb = "switched to" if answer.get("switched") else "casting"
    what = " ".join(f"{kind} {answer[kind]}" for kind in ("playlist", "dashboard", "camera") if answer.get(kind))
    if answer.get("overlay"):
        what += f" over the picture ({answer['overlay']})"
    shown = f"{what}: {answer.get('url')}" if what else answer.get("url", args.url)
    print(f"castd: {verb} {shown} ({answer.get('quality')}), session {answer.get('session')}")
    print(f"  stream: {answer.get('stream_url')}")
    for tv in answer.get("waiting") or []:  # castd already knows it waits there (POST /start's `waiting`)
        print(f"  waiting: {tv.get('name') or tv.get('device')}: {tv.get('reason')}")
    if not args.wait:
        return 0
    try:
        result = wait_for_session(client, answer["session"], want_device=bool(args.device), timeout=args.timeout,
                                  seq=answer.get("seq", 0), switch=bool(answer.get("switched")))
    except TvWaiting as exc:
        print(f"castd: {exc}")
        return exitcodes.WAITING
    print(f"castd: {result}")
    return 0


def cmd_step(client: Client, args: argparse.Namespace) -> int:
    answer = client.post(args.path)
    item = answer.get("item")
    print(f"castd: playlist {answer.get('playlist')} item {item + 1 if isinstance(item, int) else '?'} "
          f"({answer.get('dashboard')})")
    return 0


def cmd_stop(client: Client, args: argparse.Namespace) -> int:
    answer = client.post("/stop")
    stopped = answer.get("stopped")
    print(f"castd: stopped session {stopped}" if stopped else "castd: nothing was being cast")
    return 0


def cmd_status(client: Client, args: argparse.Namespace) -> int:
    raw = client.get("/status")
    print(json.dumps(raw, indent=2, sort_keys=True) if args.json else status_table(decode_status(raw)))
    return 0


def cmd_devices(client: Client, args: argparse.Namespace) -> int:
    try:
        answer = client.get("/devices")
    except ClientError as exc:
        if exc.status in (404, 405):
            print("castd: this castd cannot list devices yet (it has no /devices endpoint)", file=sys.stderr)
            return 1
        raise
    devices = answer.get("devices", []) if isinstance(answer, dict) else answer
    print(json.dumps(devices, indent=2, sort_keys=True) if args.json else devices_table(devices))
    return 0


def cmd_dashboards(client: Client, args: argparse.Namespace) -> int:
    answer = client.get("/dashboards")
    print(json.dumps(answer, indent=2, sort_keys=True) if args.json else dashboards_table(answer))
    return 0
