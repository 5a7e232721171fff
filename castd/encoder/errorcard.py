"""castd's error card: what the TV shows when a page fails (url, reason, time, next try).

A self-contained HTML page loaded as a data: URL, so it needs no network and no server and still
shows when the dashboard's host is down. Sizes are in viewport units: legible at 720p and 1080p.
The URL is scrubbed of secrets before it is drawn.
"""

from __future__ import annotations

import base64
import html
import time

from castd.logs import scrub

BACKGROUND = (0x1E, 0x23, 0x30)  # dark slate; tests look for these colours in decoded frames
ACCENT = (0xE0, 0x40, 0x30)  # the red band across the top

_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>castd: page unavailable</title><style>
html, body {{ margin: 0; height: 100%; overflow: hidden; background: rgb{background}; color: #e8eaf0;
  font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }}
.band {{ position: fixed; left: 0; right: 0; top: 0; height: 2.5vh; background: rgb{accent}; }}
main {{ position: absolute; left: 7vw; right: 7vw; top: 18vh; }}
h1 {{ font-size: 5.2vh; margin: 0 0 4vh; font-weight: 600; }}
.reason {{ font-size: 3.6vh; margin: 0 0 5vh; color: #ffb4a8; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 1.6vh 3vw; font-size: 2.7vh; margin: 0; }}
dt {{ color: #9aa3b5; }} dd {{ margin: 0; overflow-wrap: anywhere; }}
footer {{ position: fixed; right: 4vw; bottom: 4vh; font-size: 2.2vh; color: #6c7589; }}
</style></head><body>
<div class="band"></div>
<main>
<h1>This dashboard cannot be shown right now</h1>
<p class="reason">{reason}</p>
<dl>
<dt>Page</dt><dd>{url}</dd>
<dt>Failed at</dt><dd>{when}</dd>
<dt>Next try</dt><dd>{next_try}</dd>
</dl>
</main>
<footer>castd</footer>
</body></html>
"""


def card_html(url: str, reason: str, failed_at: float, retry_in: float | None, attempt: int = 1) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(failed_at))
    if retry_in is None:
        next_try = "none"
    else:
        next_try = time.strftime("%H:%M:%S", time.localtime(failed_at + retry_in)) + \
            f" (in {retry_in:.0f} s; attempt {attempt})"
    return _TEMPLATE.format(background=BACKGROUND, accent=ACCENT, reason=html.escape(scrub(reason)),
                            url=html.escape(scrub(url)), when=when, next_try=html.escape(next_try))


def card_url(url: str, reason: str, failed_at: float, retry_in: float | None, attempt: int = 1) -> str:
    """The card as a data: URL Chromium can load directly."""
    body = card_html(url, reason, failed_at, retry_in, attempt).encode()
    return "data:text/html;charset=utf-8;base64," + base64.b64encode(body).decode()
