"""Is the loaded page fit to show? The main document's HTTP status, then the site's "ready when".

A page that answered 500 or never became ready gets castd's error card instead (page.py); this
module only tells what is wrong, as one short reason a person reads on the TV.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from castd.config import Site

POLL = 0.2
NETWORK_QUIET = 0.5  # seconds without network activity that count as "idle"

# The main document's outcome: Chromium's own error page, or the HTTP status of the navigation.
_DOCUMENT = """
const nav = performance.getEntriesByType('navigation')[0];
const code = document.querySelector('.error-code');
return [location.href, nav ? nav.responseStatus : 0, code ? code.textContent : ''];
"""

# One readiness probe: [selector found (or error text), network idle]. The selector search
# pierces open shadow roots (Home Assistant builds its dashboards from web components).
_PROBE = """
const selector = arguments[0], quiet = arguments[1];
const deepQuery = (root) => {
  const hit = root.querySelector(selector);
  if (hit) return hit;
  for (const el of root.querySelectorAll('*')) {
    if (el.shadowRoot) { const inner = deepQuery(el.shadowRoot); if (inner) return inner; }
  }
  return null;
};
let found = true;
if (selector) {
  try { found = deepQuery(document) !== null; } catch (e) { found = 'invalid selector: ' + e.message; }
}
const state = window.__castd;
const idle = document.readyState === 'complete' &&
  (!state || (state.inflight <= 0 && performance.now() - state.last >= quiet));
return [found, idle];
"""


# Chromium's network errors a person is likely to meet, in words (the code stays, for searching).
NET_ERRORS = {
    "ERR_CONNECTION_REFUSED": "nothing is listening there (connection refused)",
    "ERR_NAME_NOT_RESOLVED": "the host name is unknown",
    "ERR_NAME_RESOLUTION_FAILED": "the host name could not be looked up",
    "ERR_CONNECTION_TIMED_OUT": "the host did not answer in time",
    "ERR_TIMED_OUT": "the host did not answer in time",
    "ERR_ADDRESS_UNREACHABLE": "the host cannot be reached",
    "ERR_INTERNET_DISCONNECTED": "the network is down",
    "ERR_CONNECTION_RESET": "the connection was reset",
    "ERR_CONNECTION_CLOSED": "the connection was closed",
    "ERR_EMPTY_RESPONSE": "the server sent an empty response",
    "ERR_CERT_AUTHORITY_INVALID": "the server's certificate is not trusted",
    "ERR_CERT_COMMON_NAME_INVALID": "the server's certificate is for another name",
    "ERR_CERT_DATE_INVALID": "the server's certificate has expired or is not yet valid",
    "ERR_SSL_PROTOCOL_ERROR": "the TLS connection failed",
    "ERR_TOO_MANY_REDIRECTS": "the page redirects in a loop",
    "ERR_BLOCKED_BY_CLIENT": "the address is not on castd's allowlist",
}


def explain(reason: str) -> str:
    """`net::ERR_CONNECTION_REFUSED` -> `nothing is listening there (connection refused) [ERR_...]`."""
    for code, words in NET_ERRORS.items():
        if code in reason:
            return f"{words} [{code}]"
    return reason


def document_problem(driver) -> str | None:
    """Why the main document is not the page asked for (HTTP error, Chromium error page), or None."""
    href, status, error_code = driver.execute_script(_DOCUMENT)
    if str(href).startswith("chrome-error:"):
        return explain(error_code.strip()) if error_code.strip() else "the page could not be loaded"
    if status and int(status) >= 400:
        return f"the page answered HTTP {int(status)}"
    return None


def wait_ready(driver, site: Site, cancelled: Callable[[], bool]) -> str | None:
    """Wait until the site's ready condition holds; return why it did not within its timeout, or
    None when ready. `cancelled()` ends the wait early (a newer navigation is waiting)."""
    if not site.ready_selector and not site.ready_network_idle:
        return None
    deadline = time.monotonic() + site.ready_timeout
    found, idle = False, False
    while not cancelled():
        found, idle = driver.execute_script(_PROBE, site.ready_selector, NETWORK_QUIET * 1000)
        if isinstance(found, str):
            return f"ready_selector {site.ready_selector!r} is not valid CSS"
        if found and (idle or not site.ready_network_idle):
            return None
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    waiting = []
    if site.ready_selector and not found:
        waiting.append(f"{site.ready_selector!r} never appeared")
    if site.ready_network_idle and not idle:
        waiting.append("the network never went idle")
    return f"not ready after {site.ready_timeout:g}s: " + " and ".join(waiting or ["cancelled"])


def scroll(driver, site: Site) -> None:
    if site.scroll_x or site.scroll_y:
        driver.execute_script("window.scrollTo(arguments[0], arguments[1])", site.scroll_x, site.scroll_y)


def painted(driver) -> None:
    """Return once the page's current state is on the screen: two animation frames have passed
    (what made it ready, and the scroll, may not have been painted yet)."""
    driver.execute_async_script("const done = arguments[arguments.length - 1];"
                                "requestAnimationFrame(() => requestAnimationFrame(() => done()));")
