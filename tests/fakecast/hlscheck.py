"""What the fake receiver does with a LOAD: fetch the URL like a Cast receiver would and check it plays.

Only plain http to a loopback address is fetched (the test machine's own servers); anything else fails
the LOAD without touching the network. A playable stream means:
- HLS: the playlist starts with #EXTM3U; a master playlist is followed to its first variant; the media
  playlist lists segments; one segment (the newest for a live list, the first for VOD; with the
  EXT-X-MAP init section for fMP4) is fetched and PyAV decodes one video frame from it.
- Anything else is treated as a progressive file and must decode the same way.
Receiver-like strictness on top: every response needs `Access-Control-Allow-Origin` (the receiver page
runs on another origin, Shaka Player fails without it) unless `require_cors=False`; a master playlist
that declares `mp4a` in CODECS must have an audio track in the segment (Shaka refuses it otherwise);
fMP4 segments without `hlsVideoSegmentFormat: "fmp4"` in the LOAD's media info make the receiver wait
forever (reported as `hangs`).
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urljoin, urlsplit

import av

# Cast detailedErrorCode values (pychromecast.controllers.media.MEDIA_PLAYER_ERROR_CODES)
MEDIA_DECODE = 102
MEDIA_NETWORK = 103
MEDIA_SRC_NOT_SUPPORTED = 104
SEGMENT_NETWORK = 301
HLS_NETWORK_MASTER_PLAYLIST = 311
HLS_NETWORK_PLAYLIST = 312
HLS_SEGMENT_PARSING = 316
HLS_MANIFEST_MASTER = 411
HLS_MANIFEST_PLAYLIST = 412

RECEIVER_ORIGIN = "https://www.gstatic.com"  # the Default Media Receiver page's origin
MAX_PLAYLIST = 1 << 20
MAX_SEGMENT = 64 << 20
MAX_REDIRECTS = 3


@dataclass
class Fetch:
    """One HTTP request the fake made."""

    url: str
    status: int | None = None
    content_type: str | None = None
    cors: str | None = None  # Access-Control-Allow-Origin as served
    size: int = 0
    error: str | None = None


@dataclass
class MediaCheck:
    """Result of checking one LOAD's contentId."""

    url: str
    ok: bool = False
    error: str | None = None
    error_code: int | None = None
    hangs: bool = False  # a real receiver would never finish loading this
    kind: str | None = None  # "hls" or "progressive"
    master: bool = False
    codecs: str | None = None  # CODECS of the chosen variant, if a master playlist declared them
    media_playlist_url: str | None = None
    segment_url: str | None = None
    segment_format: str | None = None  # "ts" or "fmp4"
    live: bool | None = None  # no #EXT-X-ENDLIST
    target_duration: float | None = None
    segment_count: int = 0
    video_codec: str | None = None
    profile: str | None = None
    width: int | None = None
    height: int | None = None
    has_audio: bool = False
    audio_codec: str | None = None
    seconds: float = 0.0
    fetches: list[Fetch] = field(default_factory=list)


class LoadError(Exception):
    def __init__(self, message: str, code: int, hangs: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.hangs = hangs


_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def _attrs(text: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(text)}


def _check_url(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise LoadError(f"fake receiver only fetches http:// URLs, not {parts.scheme!r}", MEDIA_SRC_NOT_SUPPORTED)
    host = parts.hostname or ""
    if host == "localhost":
        addr = "127.0.0.1"
    else:
        try:
            if not ipaddress.ip_address(host).is_loopback:
                raise ValueError
        except ValueError:
            raise LoadError(f"fake receiver refuses to fetch non-loopback host {host!r}", MEDIA_NETWORK) from None
        addr = host
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return addr, parts.port or 80, path


def _get(
    url: str, limit: int, timeout: float, require_cors: bool, code: int, record: Callable[[Fetch], None]
) -> tuple[bytes, Fetch]:
    for _ in range(MAX_REDIRECTS + 1):
        addr, port, path = _check_url(url)
        fetch = Fetch(url)
        conn = http.client.HTTPConnection(addr, port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": urlsplit(url).netloc, "Origin": RECEIVER_ORIGIN})
            resp = conn.getresponse()
            fetch.status = resp.status
            fetch.content_type = resp.getheader("Content-Type")
            fetch.cors = resp.getheader("Access-Control-Allow-Origin")
            location = resp.getheader("Location")
            body = resp.read(limit + 1)
            fetch.size = len(body)
        except (OSError, http.client.HTTPException) as exc:
            fetch.error = f"{type(exc).__name__}: {exc}"
            record(fetch)
            raise LoadError(f"GET {url} failed: {fetch.error}", code) from None
        finally:
            conn.close()
        record(fetch)
        if fetch.status in (301, 302, 303, 307, 308) and location:
            url = urljoin(url, location)
            continue
        if fetch.status != 200:
            raise LoadError(f"GET {url} returned HTTP {fetch.status}", code)
        if len(body) > limit:
            raise LoadError(f"GET {url}: body larger than {limit} bytes", code)
        if require_cors and fetch.cors not in ("*", RECEIVER_ORIGIN):
            raise LoadError(
                f"GET {url}: no Access-Control-Allow-Origin header (got {fetch.cors!r}); "
                "a Cast receiver's player cannot read it",
                code,
            )
        return body, fetch
    raise LoadError(f"GET {url}: too many redirects", code)


def _playlist_lines(body: bytes, url: str, code: int) -> list[str]:
    text = body.decode("utf-8", "replace").lstrip("\ufeff").strip()
    if not text.startswith("#EXTM3U"):
        raise LoadError(f"{url} is not an HLS playlist (no #EXTM3U)", code)
    return [line.strip() for line in text.splitlines() if line.strip()]


def _decode(data: bytes, result: MediaCheck, code: int) -> None:
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise LoadError(f"{result.segment_url or result.url}: no video stream", code)
            vstream = container.streams.video[0]
            result.video_codec = vstream.codec_context.name
            result.profile = vstream.codec_context.profile
            if container.streams.audio:
                result.has_audio = True
                result.audio_codec = container.streams.audio[0].codec_context.name
            frame = None
            for frame in container.decode(vstream):
                break
            if frame is None:
                raise LoadError(f"{result.segment_url or result.url}: no decodable video frame", code)
            result.width, result.height = frame.width, frame.height
    except LoadError:
        raise
    except Exception as exc:  # PyAV raises a zoo of FFmpeg errors
        raise LoadError(f"{result.segment_url or result.url}: cannot decode: {type(exc).__name__}: {exc}",
                        code) from None


def _check_hls(lines: list[str], url: str, media: dict, result: MediaCheck, get: Callable) -> None:
    result.kind = "hls"
    if any(line.startswith("#EXT-X-STREAM-INF") for line in lines):
        result.master = True
        variant = None
        for i, line in enumerate(lines):
            if line.startswith("#EXT-X-STREAM-INF:"):
                result.codecs = _attrs(line.split(":", 1)[1]).get("CODECS")
                variant = next((line for line in lines[i + 1:] if not line.startswith("#")), None)
                break
        if not variant:
            raise LoadError(f"{url}: master playlist without a variant URI", HLS_MANIFEST_MASTER)
        url = urljoin(url, variant)
        body, _ = get(url, MAX_PLAYLIST, HLS_NETWORK_PLAYLIST)
        lines = _playlist_lines(body, url, HLS_MANIFEST_PLAYLIST)
        if any(line.startswith("#EXT-X-STREAM-INF") for line in lines):
            raise LoadError(f"{url}: variant is another master playlist", HLS_MANIFEST_PLAYLIST)
    result.media_playlist_url = url

    init_uri = None
    segments: list[str] = []
    expect_uri = False
    for line in lines:
        if line.startswith("#EXT-X-TARGETDURATION:"):
            try:
                result.target_duration = float(line.split(":", 1)[1])
            except ValueError:
                pass
        elif line.startswith("#EXT-X-MAP:"):
            init_uri = _attrs(line.split(":", 1)[1]).get("URI")
        elif line.startswith("#EXTINF"):
            expect_uri = True
        elif not line.startswith("#") and expect_uri:
            segments.append(line)
            expect_uri = False
    result.live = "#EXT-X-ENDLIST" not in lines
    result.segment_count = len(segments)
    if not segments:
        raise LoadError(f"{url}: media playlist lists no segments", HLS_MANIFEST_PLAYLIST)

    # A live player starts near the live edge; the newest listed segment is also the one least likely
    # to have been deleted by a rolling playlist between our two requests.
    seg_url = urljoin(url, segments[-1] if result.live else segments[0])
    result.segment_url = seg_url
    fmp4 = bool(init_uri) or urlsplit(seg_url).path.endswith((".m4s", ".mp4", ".cmfv"))
    result.segment_format = "fmp4" if fmp4 else "ts"
    data = b""
    if init_uri:
        data, _ = get(urljoin(url, init_uri), MAX_SEGMENT, SEGMENT_NETWORK)
    seg, _ = get(seg_url, MAX_SEGMENT, SEGMENT_NETWORK)
    _decode(data + seg, result, HLS_SEGMENT_PARSING)

    declared = media.get("hlsVideoSegmentFormat")
    if fmp4 and declared != "fmp4":
        raise LoadError(
            "fMP4 HLS segments but the LOAD's media has no hlsVideoSegmentFormat='fmp4': "
            "the receiver waits forever",
            MEDIA_SRC_NOT_SUPPORTED,
            hangs=True,
        )
    if not fmp4 and declared == "fmp4":
        raise LoadError("LOAD declares hlsVideoSegmentFormat='fmp4' but the segments are MPEG-TS", HLS_SEGMENT_PARSING)
    if result.codecs is not None:
        codecs = result.codecs.lower()
        if "mp4a" in codecs and not result.has_audio:
            raise LoadError(
                f"master playlist declares CODECS={result.codecs!r} but the segment has no audio track",
                MEDIA_SRC_NOT_SUPPORTED,
            )
        if "avc1" not in codecs and result.video_codec == "h264":
            raise LoadError(f"master playlist CODECS={result.codecs!r} does not declare the H.264 video",
                            MEDIA_SRC_NOT_SUPPORTED)


def check_media(
    url: str,
    media: dict | None = None,
    *,
    timeout: float = 5.0,
    require_cors: bool = True,
    require_audio: bool = False,
    on_fetch: Callable[[Fetch], None] | None = None,
) -> MediaCheck:
    """Fetch and check `url` like a receiver handling a LOAD; never raises, see MediaCheck.ok/error."""
    media = media or {}
    result = MediaCheck(url)
    started = time.monotonic()

    def record(fetch: Fetch) -> None:
        result.fetches.append(fetch)
        if on_fetch is not None:
            on_fetch(fetch)

    def get(u: str, limit: int, code: int) -> tuple[bytes, Fetch]:
        return _get(u, limit, timeout, require_cors, code, record)

    try:
        content_type = (media.get("contentType") or "").lower()
        looks_hls = "mpegurl" in content_type or urlsplit(url).path.endswith(".m3u8")
        body, _ = get(url, MAX_SEGMENT if not looks_hls else MAX_PLAYLIST,
                      HLS_NETWORK_MASTER_PLAYLIST if looks_hls else MEDIA_NETWORK)
        if body.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"#EXTM3U"):
            _check_hls(_playlist_lines(body, url, HLS_MANIFEST_MASTER), url, media, result, get)
        elif looks_hls:
            raise LoadError(f"{url} is not an HLS playlist (no #EXTM3U)", HLS_MANIFEST_MASTER)
        else:
            result.kind = "progressive"
            _decode(body, result, MEDIA_SRC_NOT_SUPPORTED)
        if require_audio and not result.has_audio:
            raise LoadError("stream has no audio track (receivers have refused video-only HLS)",
                            MEDIA_SRC_NOT_SUPPORTED)
        result.ok = True
    except LoadError as exc:
        result.error, result.error_code, result.hangs = str(exc), exc.code, exc.hangs
    except Exception as exc:  # never let a checker bug kill the fake's worker
        result.error, result.error_code = f"fake receiver internal error: {type(exc).__name__}: {exc}", MEDIA_DECODE
    result.seconds = time.monotonic() - started
    return result
