"""castd's configuration: one Struct, filled from defaults < TOML file < CASTD_* environment.

Validation happens once at start-up; a bad value stops castd with one line that names the key
(`ConfigError`, exit code 2 in the CLI) instead of failing later in the middle of a cast. The file's
values are taken strictly (`port = "8762"` is an error: TOML has numbers, so a quoted one is a slip);
an environment variable is text, converted to its key's type, and an error names the variable too. A
mistyped key gets a "did you mean" (difflib), and CASTD_* variables that set nothing are reported
(`unknown_env`), since a mistyped one is otherwise ignored in silence.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tempfile
import tomllib
import zoneinfo
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from castd.mqtt.settings import MqttSettings
from castd.specs import check_specs, parse_spec, split_specs
from castd.presets import DEFAULT_PRESET, DEFAULT_STREAM_FORMAT, PRESETS, StreamFormatName
from castd.secretfile import exposure_problem
from castd.sharing import Sharing, SharingKeys, Takeover
from castd.urls import Allowlist, UrlRejected, parse_target

DEFAULT_CONFIG_FILE = Path("/etc/castd/castd.toml")
ENV_PREFIX = "CASTD_"
MIN_TOKEN_LENGTH = 16  # a guessable token is no token; 16 URL-safe characters are ~96 bits



def _check_quality_and_device(quality: str | None, device) -> None:
    """One check for the quality and device of a dashboard and of a playlist (a named preset, Cast specs)."""
    if quality and quality not in PRESETS:
        raise ValueError(f"quality: unknown preset {quality!r}; valid: {', '.join(PRESETS)}")
    if device is not None:
        try:
            check_specs(split_specs(device))
        except ValueError as exc:
            raise ValueError(f"device: {exc}") from None

class ConfigError(Exception):
    """A configuration problem a person can fix; the message names the key."""


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_COOKIE_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
COLOR_SCHEMES = ("", "light", "dark")
ZOOM_RANGE = (0.25, 5.0)
MIN_RELOAD_SECONDS = 1.0


class Site(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How to show the pages under one URL prefix (a `[[sites]]` table; the longest matching prefix wins).

    Secrets (cookies, local_storage, headers, basic_auth) live here, never in webhook bodies; castd
    masks them in every log line and never puts them in /status.
    """

    prefix: str
    cookies: dict[str, str] = {}
    local_storage: dict[str, str] = {}
    headers: dict[str, str] = {}
    basic_auth: str = ""  # "user:password", sent as an Authorization header
    zoom: float = 1.0
    color_scheme: str = ""  # light | dark | empty: the page's own choice
    css: str = ""
    ready_selector: str = ""
    ready_network_idle: bool = False
    ready_timeout: float = 20.0
    reload_seconds: float = 0.0  # 0: never reload
    scroll_x: int = 0
    scroll_y: int = 0

    def __post_init__(self) -> None:
        if self.prefix:  # the empty prefix is the built-in default for pages no site matches
            parts = urlsplit(self.prefix)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"prefix: {self.prefix!r} must be an http(s) URL with a host")
        validate_page_values(self.zoom, self.reload_seconds)
        if self.color_scheme not in COLOR_SCHEMES:
            raise ValueError(f"color_scheme: {self.color_scheme!r} is not light, dark or empty")
        if self.ready_timeout <= 0:
            raise ValueError("ready_timeout: must be positive")
        if self.scroll_x < 0 or self.scroll_y < 0:
            raise ValueError("scroll_x/scroll_y: must not be negative")
        if self.basic_auth and ":" not in self.basic_auth:
            raise ValueError("basic_auth: must be \"user:password\"")
        for name, value in self.headers.items():
            if not _HEADER_NAME.match(name) or any(c in value for c in "\r\n\0"):
                raise ValueError(f"headers: invalid header {name!r}")
        for name, value in self.cookies.items():
            if not _COOKIE_NAME.match(name) or any(c in value for c in ";\r\n\0"):
                raise ValueError(f"cookies: invalid cookie {name!r}")


def validate_page_values(zoom: float | None, reload_seconds: float | None) -> None:
    """Checks shared by [[sites]] and the /start overrides; the message names the key."""
    if zoom is not None and not ZOOM_RANGE[0] <= zoom <= ZOOM_RANGE[1]:
        raise ValueError(f"zoom: must be between {ZOOM_RANGE[0]} and {ZOOM_RANGE[1]}")
    if reload_seconds is not None and reload_seconds != 0 and not reload_seconds >= MIN_RELOAD_SECONDS:
        raise ValueError(f"reload_seconds: must be 0 (never) or at least {MIN_RELOAD_SECONDS:g}")


MAX_NAME_LENGTH = 64
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_GROUPS = {"daily": DAY_NAMES, "weekdays": DAY_NAMES[:5], "weekend": DAY_NAMES[5:]}
SCHEDULE_OVERRIDES = ("boundary", "session")


def check_name(name: str) -> None:
    """A dashboard or playlist name: what a person types in a webhook or picks in Home Assistant."""
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable() or name != name.strip():
        raise ValueError(f"name: {name!r} must be 1 to {MAX_NAME_LENGTH} printable characters "
                         "without leading or trailing spaces")


def parse_clock(text: str, key: str) -> clock_time:
    """"07:30" -> 07:30 (a wall-clock time in the entry's time zone)."""
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if not match:
        raise ValueError(f"{key}: {text!r} is not a time of day like \"07:30\"")
    return clock_time(int(match.group(1)), int(match.group(2)))


def local_zone_name() -> str:
    """The machine's IANA time zone: $TZ, else where /etc/localtime points, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            target = os.path.realpath("/etc/localtime")
            name = target.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in target else ""
        except OSError:
            name = ""
    try:
        zoneinfo.ZoneInfo(name)
        return name
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "UTC"


class Dashboard(SharingKeys, forbid_unknown_fields=True, kw_only=True):
    """A named page (a `[[dashboards]]` table): `POST /start {"dashboard": name}` casts it.

    The [[sites]] settings still apply by URL; the page keys here beat them, like a request's do.
    """

    name: str
    url: str
    quality: str = ""  # empty: the config's quality
    device: str | list[str] | None = None  # None: the config's device; "" or []: stream only
    zoom: float | None = None
    reload_seconds: float | None = None
    ready_selector: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        try:
            parse_target(self.url)
        except UrlRejected as exc:
            raise ValueError(str(exc)) from None
        _check_quality_and_device(self.quality, self.device)
        validate_page_values(self.zoom, self.reload_seconds)


class PlaylistItem(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    dashboard: str
    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds >= 1:
            raise ValueError("seconds: must be at least 1")


class Playlist(SharingKeys, forbid_unknown_fields=True, kw_only=True):
    """Dashboards in turn (a `[[playlists]]` table), shown as page switches inside one session: the TV
    gets one LOAD and one stream URL, so the playlist's quality and device hold for every item (the
    items' own dashboards lend only their URL and page settings)."""

    name: str
    items: list[PlaylistItem]
    loop: bool = True  # false: once through, then the session ends
    quality: str = ""  # empty: the first item's dashboard's, else the config's
    device: str | list[str] | None = None  # None: the first item's dashboard's, else the config's

    def __post_init__(self) -> None:
        check_name(self.name)
        if not self.items:
            raise ValueError("items: a playlist needs at least one item")
        _check_quality_and_device(self.quality, self.device)


class ScheduleEntry(SharingKeys, forbid_unknown_fields=True, kw_only=True):
    """A time window (a `[[schedules]]` table) in which castd shows a dashboard or a playlist by itself.

    `start`/`end` are wall-clock times in `timezone` (DST handled by zoneinfo); an `end` at or before
    `start` runs past midnight. Where entries overlap, the later-starting one wins.
    """

    name: str = ""  # for /status and the log; empty: "schedule N"
    days: list[str] = []  # mon..sun, or daily / weekdays / weekend; empty: every day
    start: str
    end: str
    timezone: str = ""  # IANA name ("Europe/Berlin"); empty: the machine's ($TZ or /etc/localtime)
    dashboard: str = ""
    playlist: str = ""
    device: str | list[str] | None = None  # None: the dashboard's or playlist's

    def __post_init__(self) -> None:
        if self.name:
            check_name(self.name)
        for day in self.days:
            if day.lower() not in DAY_NAMES and day.lower() not in DAY_GROUPS:
                raise ValueError(f"days: {day!r} is not one of {', '.join(DAY_NAMES)}, daily, weekdays, weekend")
        start, end = parse_clock(self.start, "start"), parse_clock(self.end, "end")
        if start == end:
            raise ValueError("end: must differ from start (an end before the start runs past midnight)")
        if self.timezone:
            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone: {self.timezone!r} is not a known IANA time zone "
                                 "(e.g. \"Europe/Berlin\")") from None
        if bool(self.dashboard) == bool(self.playlist):
            raise ValueError("give either dashboard or playlist")
        if self.device is not None:
            try:
                check_specs(split_specs(self.device))
            except ValueError as exc:
                raise ValueError(f"device: {exc}") from None

    def weekdays(self) -> frozenset[int]:
        """Monday 0 .. Sunday 6."""
        names: set[str] = set()
        for day in self.days or ["daily"]:
            names.update(DAY_GROUPS.get(day.lower(), (day.lower(),)))
        return frozenset(DAY_NAMES.index(n) for n in names)

    def zone(self) -> str:
        return self.timezone or local_zone_name()


CAMERA_SCHEMES = ("rtsp", "rtsps", "http", "https")
CAMERA_URL_PREFIX = "camera:"  # a Start's url for a camera on screen ("camera:door"): one name in the page's place


def masked_url(url: str) -> str:
    """The URL with its credentials replaced by *** (GET /dashboards, logs)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def camera_url(name: str) -> str:
    return CAMERA_URL_PREFIX + name


def camera_name(url: str) -> str | None:
    """"camera:door" -> "door"; None for a page's URL."""
    return url[len(CAMERA_URL_PREFIX):] if url.startswith(CAMERA_URL_PREFIX) else None


class Camera(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A camera (a `[cameras.NAME]` table): `POST /start {"camera": NAME}` shows it full screen, with
    `"overlay"` in a corner over the page. castd reads it itself with FFmpeg (castd/encoder/camera.py).

    Credentials go in `username`/`password` (or in the URL as user:password@): like the token, they make
    the config file a secret (castd refuses it readable by every user), are masked in every log line and
    never shown by /status or GET /dashboards.
    """

    url: str  # rtsp://, rtsps:// (H.264/H.265 over RTSP), or http(s):// MJPEG or HLS
    username: str = ""
    password: str = ""
    transport: Literal["tcp", "udp"] = "tcp"  # RTSP: tcp never loses packets to a busy Wi-Fi (smearing)
    snapshot_url: str = ""  # a JPEG shown while the stream connects (optional)
    overlay_size: float = 0.5  # picture-in-picture: this fraction of the picture's width (0.5: a quarter)
    audio: bool = False  # the camera's sound into the stream while it is on screen (castd/encoder/audio.py)

    def __post_init__(self) -> None:
        for key in ("url", "snapshot_url"):
            value = getattr(self, key)
            if not value and key == "snapshot_url":
                continue
            parts = urlsplit(value)
            schemes = CAMERA_SCHEMES if key == "url" else ("http", "https")
            if parts.scheme.lower() not in schemes or not parts.hostname or any(c in value for c in " \r\n\0"):
                raise ValueError(f"{key}: must be a {', '.join(s + '://' for s in schemes)} URL with a host")
        if not 0.1 <= self.overlay_size <= 1:
            raise ValueError("overlay_size: must be between 0.1 and 1 (a fraction of the picture's width)")

    def secrets(self) -> list[str]:
        """What no log line may show: the password, given apart or in a URL."""
        found = [self.password] if self.password else []
        for value in (self.url, self.snapshot_url):
            if value:
                password = urlsplit(value).password
                if password:
                    found.append(password)
        return found


class Tv(SharingKeys, forbid_unknown_fields=True, kw_only=True):
    """How one TV is shared (a `[[tvs]]` table): its sharing keys under every start, dashboard, playlist and
    schedule that casts to it, over the config's own. `device` is matched against the spec a session names
    the TV by, and against its name, UUID or host:port once castd has found it."""

    device: str

    def __post_init__(self) -> None:
        try:
            parse_spec(self.device)
        except ValueError as exc:
            raise ValueError(f"device: {exc}") from None


Standby = Literal["off", "after-use", "boot"]  # warm standby: never, after a session, from start-up


class Config(SharingKeys, forbid_unknown_fields=True, kw_only=True):
    """castd's settings. The sharing keys at the top level (castd/sharing.py: takeover, sticky, wake, volume,
    mute, silent_start, restore_volume) are the defaults under every dashboard, schedule and start."""

    # sharing the TV (castd/sharing.py): the bottom layer, so these have values (volume, mute: unset)
    takeover: Takeover = "always"
    sticky: bool = False
    wake: bool = True
    silent_start: bool = False
    restore_volume: bool = False

    # HTTP front end
    host: str = "127.0.0.1"
    port: int = 8765
    # where per-session HLS folders live; empty: $RUNTIME_DIRECTORY, /run/castd, or a temp dir
    runtime_dir: str = ""
    # browser
    chromium: str = "/usr/lib/chromium/chromium"
    chromedriver: str = "/usr/bin/chromedriver"
    xvfb: str = "/usr/bin/Xvfb"
    page_load_timeout: float = 20.0
    # the page watchdog (castd/encoder/pagewatch.py): a browser that does not answer a probe for this long
    # (or a load for page_load_timeout + this) has a hung page: a new browser, then a new encoder
    page_hang_seconds: float = 5.0
    # V8 heap cap per page: a leaking dashboard crashes its tab (and is restarted) instead of
    # pushing a small Pi into swap or the OOM killer
    renderer_heap_mb: int = 512
    # warm standby: keep Xvfb + Chromium ready at about:blank between sessions
    # (off | after-use | boot); costs ~0.5 GB of memory, saves ~1 s per start from idle
    standby: Standby = "off"
    # sessions
    quality: str = DEFAULT_PRESET
    # the stream's shape (castd/presets.py STREAM_FORMATS): "hls-fast-big" (0.5 s segments, the held first
    # picture as 1.4 + 3 x 0.5 s, EXT-X-START -1.5: Shaka 4.15+ sit ~1.5 s behind, 4.9.2 3 s), "hls-fast-parts"
    # (the same with partial segments and blocking reload: Shaka 4.16 and 5.x in low-latency mode), "hls-fast"
    # (the first picture held as six 0.5 s segments), "hls-1s" (1 s segments, HOLD-BACK 3: every line ~3 s
    # behind) or "hls-fast-nohb"; numbers in bench/README.md
    stream_format: StreamFormatName = DEFAULT_STREAM_FORMAT
    max_duration: int = 24 * 3600
    # watchdog: restart the encoder when it produces nothing for this long (seconds)
    frame_stall_seconds: float = 6.0
    segment_stall_seconds: float = 10.0
    # crash-loop guard: this many failed starts in a row end a round of quick restarts; a session still
    # wanted is then `retrying`: tried again after retry_seconds, doubling up to 15 minutes (0: never,
    # the session ends as `failed`)
    max_restarts: int = 5
    retry_seconds: float = 60.0
    # the front end pings the supervisor every 2 s; one that has not answered for this long is ended and a
    # new one started (castd/children/liveness.py)
    supervisor_timeout: float = 10.0
    # memory watchdog (castd/supervisor/memory.py): past this PSS of the browser's tree (MB) the page is
    # reloaded, then the encoder restarted (the session goes on); 0: off. Checked every memory_check_seconds
    memory_limit_mb: int = 650
    memory_check_seconds: float = 10.0
    # address the TV uses to reach castd (empty: detect it)
    stream_host: str = ""
    # casting (castd/cast/): the default device(s) and how patiently to talk to them
    device: str | list[str] = ""
    cast_connect_timeout: float = 10.0
    cast_load_timeout: float = 30.0
    cast_heartbeat_timeout: float = 20.0
    cast_retries: int = 10
    # after cast_retries failed tries in a row, a TV the session still wants is tried again after this long,
    # doubling to 15 minutes (castd/children/policy.py RetryLater); 0: failed for the rest of the session
    cast_retry_seconds: float = 30.0
    # a TV whose player sits in BUFFERING, or whose currentTime stands still, this long is LOADed again (0: never)
    cast_stall_seconds: float = 5.0
    mdns_interfaces: list[str] = msgspec.field(default_factory=list)
    mdns_timeout: float = 3.0
    log_level: str = "INFO"
    # webhook security (castd/api/auth.py, ratelimit.py): a token, or loopback only unless `insecure`
    token: str = ""
    insecure: bool = False
    allowlist: list[str] = msgspec.field(default_factory=list)
    rate_limit_burst: int = 5
    rate_limit_per_minute: float = 12.0
    # a /start that only switches the page of the running session (and /next, /previous) costs
    # ~0.5 s of encoder time, no browser: its own, looser bucket (ten dashboards in ten seconds)
    switch_rate_limit_burst: int = 10
    switch_rate_limit_per_minute: float = 120.0
    max_body_bytes: int = 64 * 1024
    max_json_depth: int = 8
    # per-site page settings, matched by URL prefix ([[sites]] tables)
    sites: list[Site] = []
    # named dashboards, playlists and schedules ([[dashboards]], [[playlists]], [[schedules]])
    dashboards: list[Dashboard] = []
    playlists: list[Playlist] = []
    schedules: list[ScheduleEntry] = []
    # per-TV sharing keys ([[tvs]] tables: device = "Living Room TV", takeover = "when-idle", ...)
    tvs: list[Tv] = []
    # a manual start during a schedule entry holds until the next schedule boundary, or until the
    # manual session ends ("session"); then the schedule's current entry comes back
    schedule_override: str = "boundary"
    # keep what castd is meant to show in state_dir and put it back after a restart
    resume: bool = True
    # folder for the resume state; empty: systemd's $STATE_DIRECTORY (StateDirectory=castd), else
    # nothing is kept (a castd run by hand does not resume)
    state_dir: str = ""
    # cameras castd reads itself ([cameras.NAME] tables; castd/encoder/camera.py)
    cameras: dict[str, Camera] = {}
    # castd on an MQTT broker: Home Assistant discovery, control and state topics ([mqtt] table)
    mqtt: MqttSettings = msgspec.field(default_factory=MqttSettings)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError("port: must be between 1 and 65535")
        if self.quality not in PRESETS:
            raise ValueError(f"quality: unknown preset {self.quality!r}; valid: {', '.join(PRESETS)}")
        if self.max_duration <= 0:
            raise ValueError("max_duration: must be a positive number of seconds")
        if self.log_level.upper() not in {"TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"log_level: unknown level {self.log_level!r}")
        for key in ("frame_stall_seconds", "segment_stall_seconds", "page_load_timeout", "page_hang_seconds"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key}: must be positive")
        if self.renderer_heap_mb < 64:
            raise ValueError("renderer_heap_mb: must be at least 64")
        if self.memory_limit_mb < 0 or self.memory_check_seconds < 1:
            raise ValueError("memory_limit_mb: 0 (off) or more; memory_check_seconds: at least 1")
        if self.max_restarts < 1:
            raise ValueError("max_restarts: must be at least 1")
        if not (self.retry_seconds == 0 or 1 <= self.retry_seconds <= 900):
            raise ValueError("retry_seconds: 0 (a give-up is final) or 1 to 900 seconds")
        if not 2 <= self.supervisor_timeout <= 60:
            raise ValueError("supervisor_timeout: 2 to 60 seconds")
        try:
            check_specs(split_specs(self.device))
        except ValueError as exc:
            raise ValueError(f"device: {exc}") from None
        for key in ("cast_connect_timeout", "cast_load_timeout", "cast_heartbeat_timeout", "mdns_timeout"):
            if not 0 < getattr(self, key) <= 600:
                raise ValueError(f"{key}: must be between 0 and 600 seconds")
        if not 0 <= self.cast_stall_seconds <= 600:
            raise ValueError("cast_stall_seconds: must be between 0 (off) and 600 seconds")
        if self.cast_retries < 0:
            raise ValueError("cast_retries: must be 0 or more")
        if not (self.cast_retry_seconds == 0 or 1 <= self.cast_retry_seconds <= 900):
            raise ValueError("cast_retry_seconds: 0 (a give-up is final) or 1 to 900 seconds")
        for address in self.mdns_interfaces:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"mdns_interfaces: {address!r} is not an IP address of this machine") from None
        if self.token and (len(self.token) < MIN_TOKEN_LENGTH or not self.token.isprintable()
                           or not self.token.isascii() or " " in self.token):
            raise ValueError(f"token: use at least {MIN_TOKEN_LENGTH} printable ASCII characters without spaces "
                             "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
        try:
            Allowlist.parse(self.allowlist)
        except UrlRejected as exc:
            raise ValueError(str(exc)) from None
        if self.rate_limit_burst < 1:
            raise ValueError("rate_limit_burst: must be at least 1")
        if self.rate_limit_per_minute <= 0:
            raise ValueError("rate_limit_per_minute: must be positive")
        if not 256 <= self.max_body_bytes <= 64 * 1024:
            raise ValueError("max_body_bytes: must be between 256 and 65536")
        if not 2 <= self.max_json_depth <= 64:
            raise ValueError("max_json_depth: must be between 2 and 64")
        if self.switch_rate_limit_burst < 1:
            raise ValueError("switch_rate_limit_burst: must be at least 1")
        if self.switch_rate_limit_per_minute <= 0:
            raise ValueError("switch_rate_limit_per_minute: must be positive")
        if self.schedule_override not in SCHEDULE_OVERRIDES:
            raise ValueError(f"schedule_override: must be boundary or session, not {self.schedule_override!r}")
        self._check_programme()

    def _check_programme(self) -> None:
        """Names are unique and every reference points at something configured (the key is named)."""
        allowlist = Allowlist.parse(self.allowlist)
        names: set[str] = set()
        for i, board in enumerate(self.dashboards):
            if board.name in names:
                raise ValueError(f"dashboards[{i}].name: {board.name!r} is used twice")
            names.add(board.name)
            if not allowlist.allows_url(board.url):
                raise ValueError(f"dashboards[{i}].url: not on the allowlist")
        playlists: set[str] = set()
        for i, playlist in enumerate(self.playlists):
            if playlist.name in playlists:
                raise ValueError(f"playlists[{i}].name: {playlist.name!r} is used twice")
            playlists.add(playlist.name)
            for j, item in enumerate(playlist.items):
                if item.dashboard not in names:
                    raise ValueError(f"playlists[{i}].items[{j}].dashboard: no dashboard named {item.dashboard!r}"
                                     f" (configured: {', '.join(sorted(names)) or 'none'})")
        for name in self.cameras:
            try:
                check_name(name)
            except ValueError as exc:
                raise ValueError(f"cameras.{exc}") from None
        for i, entry in enumerate(self.schedules):
            if entry.dashboard and entry.dashboard not in names:
                raise ValueError(f"schedules[{i}].dashboard: no dashboard named {entry.dashboard!r}"
                                 f" (configured: {', '.join(sorted(names)) or 'none'})")
            if entry.playlist and entry.playlist not in playlists:
                raise ValueError(f"schedules[{i}].playlist: no playlist named {entry.playlist!r}"
                                 f" (configured: {', '.join(sorted(playlists)) or 'none'})")

    def tv_sharing(self, *names: str | None) -> Sharing:
        """The sharing keys of the first [[tvs]] entry that names this TV (by any of `names`: the spec, its
        friendly name, UUID, host:port), over the config's own."""
        wanted = {n.casefold() for n in names if n}
        for tv in self.tvs:
            if tv.device.casefold() in wanted:
                return tv.sharing().over(self.sharing())
        return self.sharing()

    def dashboard(self, name: str) -> Dashboard | None:
        return next((d for d in self.dashboards if d.name == name), None)

    def playlist(self, name: str) -> Playlist | None:
        return next((p for p in self.playlists if p.name == name), None)

    def log_secrets(self) -> list[str]:
        """Every configured value no log line may show (masked by castd/logs.py in each process)."""
        found = [value for value in (self.token, self.mqtt.password) if value]
        for camera in self.cameras.values():
            found += camera.secrets()
        return found

    def resolved_state_dir(self) -> Path | None:
        """Where the resume state lives: state_dir, else systemd's $STATE_DIRECTORY, else None."""
        candidate = self.state_dir or os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        return Path(candidate) if candidate else None

    def default_devices(self) -> list[str]:
        """The configured default device specs (a comma-separated string or a list)."""
        return split_specs(self.device)

    def resolved_runtime_dir(self) -> Path:
        """The folder for session files: configured, systemd's RuntimeDirectory, /run/castd, or temp."""
        candidates = [self.runtime_dir, os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0], "/run/castd"]
        for candidate in candidates:
            if not candidate:
                continue
            path = Path(candidate)
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
            if os.access(path, os.W_OK | os.X_OK):
                return path
        path = Path(tempfile.gettempdir()) / f"castd-{os.getuid()}"
        path.mkdir(mode=0o700, exist_ok=True)
        return path


FIELD_NAMES = tuple(Config.__struct_fields__)
LIST_FIELDS = ("allowlist", "mdns_interfaces")  # from the environment: comma or space separated


MQTT_LIST_FIELDS = ("groups",)


def _env_values(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The CASTD_* settings, each converted to its key's type; and which variable set which key."""
    values: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name in FIELD_NAMES:
        variable = ENV_PREFIX + name.upper()
        raw = environ.get(variable)
        if raw is not None and name != "mqtt":
            names[name] = variable
            values[name] = _env_value(name, raw.replace(",", " ").split() if name in LIST_FIELDS else raw,
                                      _FIELD_TYPES[name], variable)
    mqtt = {}  # CASTD_MQTT_HOST=... sets mqtt.host
    for name, kind in _MQTT_TYPES.items():
        variable = f"{ENV_PREFIX}MQTT_{name.upper()}"
        raw = environ.get(variable)
        if raw is not None:
            names[f"mqtt.{name}"] = variable
            mqtt[name] = _env_value(f"mqtt.{name}", raw.replace(",", " ").split() if name in MQTT_LIST_FIELDS
                                    else raw, kind, variable)
    if mqtt:
        values["mqtt"] = mqtt
    return values, names


def _env_value(key: str, raw: Any, kind: Any, variable: str) -> Any:
    try:
        return msgspec.convert(raw, kind, strict=False)
    except msgspec.ValidationError as exc:  # the value is not shown: it may be the token
        raise ConfigError(f"{key}: {_describe(exc)} (set by {variable})") from None


_FIELD_TYPES = {f.name: f.type for f in msgspec.structs.fields(Config)}
_MQTT_TYPES = {f.name: f.type for f in msgspec.structs.fields(MqttSettings)}
NOT_SETTINGS = (ENV_PREFIX + "CONFIG",)  # CASTD_ variables that are no config key but mean something


def unknown_env(environ: dict[str, str] | None = None) -> list[str]:
    """One sentence per CASTD_* variable that sets nothing (a typo is otherwise ignored in silence)."""
    environ = dict(os.environ if environ is None else environ)
    known = {ENV_PREFIX + name.upper() for name in FIELD_NAMES if name != "mqtt"}
    known |= {f"{ENV_PREFIX}MQTT_{name.upper()}" for name in _MQTT_TYPES} | set(NOT_SETTINGS)
    problems = []
    for variable in sorted(environ):
        if variable.startswith(ENV_PREFIX) and variable not in known:
            close = difflib.get_close_matches(variable, sorted(known), n=1)
            problems.append(f"{variable} is not a castd setting; it is ignored"
                            + (f" (did you mean {close[0]}?)" if close else ""))
    return problems


def _did_you_mean(key: str, names) -> str:
    close = difflib.get_close_matches(key, list(names), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _describe(error: msgspec.ValidationError) -> str:
    """Turn msgspec's `... - at `$.port`` into `port: ...`."""
    text = str(error)
    if text.startswith("Object contains unknown field `"):
        key = text.split("`")[1]
        tables = {"sites": Site, "dashboards": Dashboard, "playlists": Playlist, "schedules": ScheduleEntry,
                  "tvs": Tv}
        where = text.rpartition(" - at `$.")[2].rstrip("`") if " - at `$." in text else ""
        table = re.match(r"([a-z]+)\[\d+\]", where)
        if table and table.group(1) in tables:  # inside a [[sites]], [[dashboards]]... table
            kind = PlaylistItem if ".items[" in where else tables[table.group(1)]
            return (f"{where}: {key}: unknown key{_did_you_mean(key, kind.__struct_fields__)} "
                    f"(valid keys: {', '.join(kind.__struct_fields__)})")
        if where == "mqtt":
            return (f"mqtt.{key}: unknown key{_did_you_mean(key, MqttSettings.__struct_fields__)} "
                    f"(valid keys: {', '.join(MqttSettings.__struct_fields__)})")
        return f"{key}: unknown key{_did_you_mean(key, FIELD_NAMES)} (valid keys: {', '.join(FIELD_NAMES)})"
    if " - at `$." in text:
        message, _, where = text.rpartition(" - at `$.")
        where = where.rstrip("`")
        return message if message.startswith(f"{where}.") else f"{where}: {message}"
    return text


def _check_cameras(tables: Any) -> None:
    """Each [cameras.NAME] table on its own, so the message names the camera (msgspec says only `cameras[...]`)."""
    if not isinstance(tables, dict):
        return
    for name, table in tables.items():
        try:
            msgspec.convert(table, Camera)
        except msgspec.ValidationError as exc:
            text = str(exc)
            if text.startswith("Object contains unknown field `"):
                key = text.split("`")[1]
                text = f"{key}: unknown key (valid keys: {', '.join(Camera.__struct_fields__)})"
            elif " - at `$." in text:
                message, _, where = text.rpartition(" - at `$.")
                text = f"{where.rstrip('`')}: {message}"
            raise ConfigError(f"cameras.{name}.{text}" if not text.startswith("Expected") else
                              f"cameras.{name}: {text}") from None


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None,
                overrides: dict[str, Any] | None = None) -> Config:
    """Build the Config: defaults, then the TOML file, then CASTD_* variables, then CLI overrides.

    `path=None` reads /etc/castd/castd.toml when it exists; a path that was asked for must exist.
    """
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    if path is None and environ.get(ENV_PREFIX + "CONFIG"):
        path = environ[ENV_PREFIX + "CONFIG"]
    file = Path(path) if path is not None else DEFAULT_CONFIG_FILE
    if path is not None or file.exists():
        try:
            with file.open("rb") as fh:
                values.update(tomllib.load(fh))
                problem = exposure_problem(file, fh.fileno(), values)
            if problem:
                raise ConfigError(problem)
        except FileNotFoundError:
            raise ConfigError(f"config file {file}: not found") from None
        except PermissionError:
            raise ConfigError(f"config file {file}: not readable by this user") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file}: invalid TOML: {exc}") from None
    env, variables = _env_values(environ)
    if "mqtt" in env and isinstance(values.get("mqtt"), dict):
        env["mqtt"] = {**values["mqtt"], **env["mqtt"]}  # CASTD_MQTT_* beat the [mqtt] table key by key
    values.update(env)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    values.update(given)
    _check_cameras(values.get("cameras"))
    try:  # strict: the file's values must have their key's type (the environment's are converted above)
        return msgspec.convert(values, Config)
    except (msgspec.ValidationError, ValueError) as exc:
        message = _describe(exc) if isinstance(exc, msgspec.ValidationError) else str(exc)
        key = message.split(":", 1)[0]
        if key in variables and key not in given:
            message += f" (set by {variables[key]})"
        elif re.search(r"Expected `(int|float|bool)`, got `str`", message):
            message += " (write it without quotes)"
        raise ConfigError(message) from None
