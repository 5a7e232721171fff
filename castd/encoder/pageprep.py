"""Browser state set over DevTools before a page loads: cookies, headers, localStorage, CSS, zoom.

Everything is in place before the page's own scripts run: cookies go into the cookie store, headers
into the network layer, zoom into the tab's device metrics, and localStorage and CSS into a script
Chromium runs first in every new document (guarded by origin, so another site never sees them). The
previous navigation's state is undone first, so one site's settings never leak into the next.

Zoom is a device scale factor, as a browser's own zoom is, not CSS `zoom`: at zoom 1.5 on a 1280x720
frame the page is laid out in a 853x480 CSS px viewport drawn at 1.5 device pixels per CSS pixel. So
`100vh` is still the frame's height and media queries see the zoomed width. CSS `zoom` on the root
(castd's first way) scales vh as well (Chromium's standardized zoom): a dashboard of two 50vh halves
became 75% + 75% of the frame at 1.5, the lower half pushed off the bottom (tests/test_dashboards.py).
"""

from __future__ import annotations

import json
import math

from castd.config import Site
from castd.encoder.sites import auth_header, origin_of

# Runs first in every new document of every frame. ACTIVITY is not secret and runs everywhere: it
# tracks fetch/XHR in flight and the last network activity for the "network idle" readiness test.
_ACTIVITY = """
(() => {
  if (window.__castd) return;
  const state = window.__castd = {inflight: 0, last: performance.now()};
  const touch = () => { state.last = performance.now(); };
  try { new PerformanceObserver(touch).observe({type: 'resource', buffered: true}); } catch (e) {}
  const fetch0 = window.fetch;
  if (fetch0) window.fetch = function (...args) {
    state.inflight++; touch();
    return fetch0.apply(this, args).finally(() => { state.inflight--; touch(); });
  };
  const send0 = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (...args) {
    state.inflight++; touch();
    this.addEventListener('loadend', () => { state.inflight--; touch(); }, {once: true});
    return send0.apply(this, args);
  };
})();
"""

# The site's part: only in documents of the site's origin. CSS and zoom go to the top frame as a
# constructed stylesheet adopted by the document and by every shadow root created from then on
# (attachShadow is wrapped), so a snippet also reaches inside web components like Home
# Assistant's; a plain <style> in the document would not.
_SITE = """
(() => {
  if (location.origin !== %(origin)s) return;
  const items = %(storage)s;
  for (const key of Object.keys(items)) { try { localStorage.setItem(key, items[key]); } catch (e) {} }
  const css = %(css)s;
  if (!css || window !== window.top) return;
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(css);
  const adopt = (root) => { try { root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet]; } catch (e) {} };
  adopt(document);
  const attachShadow = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (...args) {
    const root = attachShadow.apply(this, args);
    adopt(root);
    return root;
  };
})();
"""


def site_css(site: Site) -> str:
    """The site's CSS snippet (zoom is not CSS: see the module's docstring)."""
    return site.css


def new_document_script(site: Site, url: str) -> str:
    script = _ACTIVITY
    css = site_css(site)
    if site.local_storage or css:
        script += _SITE % {"origin": json.dumps(origin_of(site.prefix or url)),
                           "storage": json.dumps(site.local_storage), "css": json.dumps(css)}
    return script


class PagePrep:
    """Applies a site's settings to one Chromium tab through selenium's DevTools bridge."""

    def __init__(self, driver) -> None:
        self.driver = driver
        self._script_id: str | None = None
        self._network = False  # network domain on: needed for extra headers, costly on busy pages
        self._zoom = 1.0  # the device scale factor set on the tab

    def cdp(self, command: str, params: dict) -> dict:
        return self.driver.execute_cdp_cmd(command, params)

    def apply(self, site: Site, url: str) -> None:
        """Set up everything `url` needs before it is loaded (replacing the previous page's set-up)."""
        if self._script_id is not None:
            self.cdp("Page.removeScriptToEvaluateOnNewDocument", {"identifier": self._script_id})
            self._script_id = None
        headers = dict(site.headers)
        if (auth := auth_header(site)) is not None:
            headers["Authorization"] = auth
        self._set_headers(headers)
        origin = origin_of(site.prefix or url)
        for name, value in site.cookies.items():
            self.cdp("Network.setCookie", {"name": name, "value": value, "url": origin + "/", "path": "/",
                                           "secure": origin.startswith("https:")})
        features = [{"name": "prefers-color-scheme", "value": site.color_scheme}] if site.color_scheme else []
        self.cdp("Emulation.setEmulatedMedia", {"features": features})
        self._set_zoom(site.zoom)
        result = self.cdp("Page.addScriptToEvaluateOnNewDocument", {"source": new_document_script(site, url)})
        self._script_id = result.get("identifier")

    def _set_zoom(self, zoom: float) -> None:
        """The tab's viewport: the window (the preset's frame, kiosk) in CSS px of `zoom` device px each."""
        if zoom == self._zoom:
            return
        if zoom == 1.0:
            self.cdp("Emulation.clearDeviceMetricsOverride", {})
        else:
            # The view keeps the window's size (dontSetVisibleSize: without it Chromium showed the page in
            # an 853x480 corner of a 1280x720 frame), its content is drawn `scale` times larger, rastered
            # at that density (deviceScaleFactor: sharp text, not a scaled-up bitmap); rounded up, so the
            # last device pixel column or row is covered (1280 / 1.5 = 853.3: 853 left a 1 px seam)
            bounds = self.cdp("Browser.getWindowForTarget", {})["bounds"]
            self.cdp("Emulation.setDeviceMetricsOverride", {
                "width": math.ceil(bounds["width"] / zoom), "height": math.ceil(bounds["height"] / zoom),
                "deviceScaleFactor": zoom, "scale": zoom, "mobile": False, "dontSetVisibleSize": True})
        self._zoom = zoom

    def clear(self) -> None:
        """Undo the site's set-up that could reach other pages (headers go with every request)."""
        self._set_headers({})

    def _set_headers(self, headers: dict[str, str]) -> None:
        if headers and not self._network:
            self.cdp("Network.enable", {})
            self._network = True
        if self._network:
            self.cdp("Network.setExtraHTTPHeaders", {"headers": headers})
        if not headers and self._network:
            self.cdp("Network.disable", {})
            self._network = False
