"""A browser start, side by side: castd's Browser with its startup prefs (about:blank) and without them
(Chromium's New Tab Page), alternating in one run on one Xvfb.

Three times per start: `start` (chromedriver and Chromium up: webdriver.Chrome returns), `first command`
(a trivial script: chromedriver answers it only once the page Chromium opened at start has loaded) and
`first page` (castd's navigate of a local page: loaded and painted). Their sum is what every cold start, every
restart after a crash and every new browser after a hung page waits before the page can be on screen.

    .venv/bin/python -m bench.browserstart --starts 6
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import threading
import time

from castd.config import Config
from castd.encoder import browser as browser_module
from castd.encoder.browser import Browser
from castd.encoder.xvfb import Xvfb

DEFAULTS = Config()
PAGE = b"<html><body style='background:#3060a0'><h1>castd</h1></body></html>"


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args) -> None:
        pass


def one_start(display: str, url: str, prefs: dict) -> dict[str, float]:
    saved = browser_module.STARTUP_PREFS
    browser_module.STARTUP_PREFS = prefs  # read by Browser() when it builds its options
    try:
        browser = Browser(chromium=DEFAULTS.chromium, chromedriver=DEFAULTS.chromedriver, display=display,
                          width=1280, height=720, page_load_timeout=20)
    finally:
        browser_module.STARTUP_PREFS = saved
    try:
        t0 = time.monotonic()
        browser.start()
        t1 = time.monotonic()
        browser.driver.execute_script("return 1")
        t2 = time.monotonic()
        browser.navigate(url)
        t3 = time.monotonic()
        return {"start": t1 - t0, "first command": t2 - t1, "first page": t3 - t2, "total": t3 - t0}
    finally:
        browser.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=6, help="starts of each kind (alternating)")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    xvfb = Xvfb(DEFAULTS.xvfb, 1280, 720)
    kinds = {"about:blank (castd)": browser_module.STARTUP_PREFS, "New Tab Page (Chromium's default)": {}}
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    try:
        for _ in range(args.starts):
            for kind, prefs in kinds.items():
                runs[kind].append(one_start(xvfb.display, url, prefs))
    finally:
        xvfb.stop()
        server.shutdown()
    names = list(kinds)
    print(f"| medians of {args.starts} starts, seconds | {' | '.join(names)} | ratio |")
    print(f"|---|{'---|' * len(names)}---|")
    for step in ("start", "first command", "first page", "total"):
        medians = [statistics.median(r[step] for r in runs[kind]) for kind in names]
        print(f"| {step} | {' | '.join(f'{m:.3f}' for m in medians)} | {medians[0] / medians[1]:.2f} |")


if __name__ == "__main__":
    main()
