"""Wait until a castd started by `make run` streams its demo, then fetch one finished segment.

Runs on the machine outside the chroot (the chroot shares its loopback), with the standard library only.
    python3 platforms/demo_check.py PORT TIMEOUT [SEGMENT_FILE]
Prints how long the wait took and what it fetched; exits 1 (with the last /status seen) if the demo does not
stream within TIMEOUT seconds, or its playlist or segment is not what HLS promises (a TS segment starts with
the 0x47 sync byte every 188 bytes). SEGMENT_FILE, when given, receives the segment's bytes (to decode it).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def playlist_entries(url: str) -> list[str]:
    """The URIs a playlist lists (absolute), in order."""
    text = get(url).decode()
    assert text.startswith("#EXTM3U"), f"{url} is not a playlist: {text[:80]!r}"
    return [urllib.parse.urljoin(url, line) for line in text.splitlines() if line and not line.startswith("#")]


def main() -> int:
    port, timeout = int(sys.argv[1]), float(sys.argv[2])
    out = sys.argv[3] if len(sys.argv) > 3 else None
    base = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    status: dict = {}
    while time.monotonic() - start < timeout:
        try:
            status = json.loads(get(base + "/status"))
        except (urllib.error.URLError, OSError, ValueError):
            status = {}
        if status.get("state") == "streaming" and status.get("segments", 0) >= 1 and status.get("stream_url"):
            break
        time.sleep(1)
    else:
        print(f"demo_check: not streaming after {timeout:.0f} s; last /status: {json.dumps(status)}")
        return 1
    waited = time.monotonic() - start
    variants = playlist_entries(status["stream_url"])  # master playlist -> media playlist
    segments = playlist_entries(variants[0])
    segment = get(segments[0])
    packets = range(0, len(segment), 188)
    ts_ok = len(segment) >= 188 and len(segment) % 188 == 0 and all(segment[i] == 0x47 for i in packets)
    print(f"demo_check: streaming after {waited:.1f} s: url={status.get('url')} segments={status.get('segments')} "
          f"fps={status.get('fps')}; {segments[0].rsplit('/', 1)[-1]}: {len(segment)} bytes, TS sync {ts_ok}")
    if out:
        with open(out, "wb") as sink:
            sink.write(segment)
    return 0 if ts_ok else 1


if __name__ == "__main__":
    sys.exit(main())
