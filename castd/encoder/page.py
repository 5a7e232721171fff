"""The browser thread of the encoder child: owns Chromium, shows pages, reports how it went.

It runs beside the frame loop so a slow page load never delays a frame. Chromium (through
chromedriver) is started from this thread, whose lifetime is the browser's: PR_SET_PDEATHSIG
fires when the starting thread ends, so a dying thread takes chromedriver with it.

A page is shown only when it is fit to show: loaded, not an HTTP error, and ready by its site's
"ready when". Until then `holding` is set and the frame loop repeats the last picture, so the TV
never sees a half-loaded page on a switch or a reload. A page that fails gets castd's error card,
and is tried again with backoff; a page with a reload interval is reloaded on schedule.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from selenium.common.exceptions import TimeoutException, WebDriverException

from castd.config import Site
from castd.encoder import errorcard, readiness
from castd.encoder.browser import Browser, BrowserError
from castd.encoder.pageprep import PagePrep
from castd.encoder.sites import settings_for
from castd.logs import log
from castd.protocol import ChildEvent, PageOverrides
from castd.supervisor.backoff import Backoff

RETRY_FIRST, RETRY_CAP = 1.0, 60.0  # a failed page is tried again after 1 s, 2 s, 4 s ... 60 s


class Target(NamedTuple):
    nav: int
    url: str
    page: PageOverrides | None


class PageThread(threading.Thread):
    def __init__(self, *, chromium: str, chromedriver: str, display: str, width: int, height: int,
                 page_load_timeout: float, log_path: Path | None, report: Callable[[ChildEvent], None],
                 sites: list[Site] | None = None) -> None:
        super().__init__(name="page", daemon=True)
        self._browser_args = dict(chromium=chromium, chromedriver=chromedriver, display=display,
                                  width=width, height=height, page_load_timeout=page_load_timeout,
                                  log_path=log_path)
        self._page_load_timeout = page_load_timeout
        self._sites = sites or []
        self._report = report
        self._cond = threading.Condition()
        self._pending: Target | None = None
        self._stopping = False
        self._next_at: float | None = None  # monotonic time of the next reload or retry
        self._retry = Backoff(first=RETRY_FIRST, cap=RETRY_CAP)
        self._failing = False
        self._showing = False  # a page or the card is on screen
        self.holding = False  # the frame loop repeats its last frame while set
        self.failed: str | None = None
        self.loaded_nav = -1  # nav id of the last page shown (ready, or replaced by the error card)
        self.loaded_at = 0.0

    def navigate(self, url: str, nav: int, page: PageOverrides | None = None) -> None:
        """Ask for `url`; a newer request replaces one not yet started."""
        with self._cond:
            self._pending = Target(nav, url, page)
            self._cond.notify()

    def stop(self, timeout: float = 3.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self.join(timeout)

    def run(self) -> None:
        started = time.monotonic()
        try:
            browser = Browser(**self._browser_args)
        except BrowserError as exc:
            self._fail(str(exc))
            return
        log.debug("browser ready", seconds=round(time.monotonic() - started, 2))
        try:
            width, height = browser.viewport()
            if (width, height) != (browser.width, browser.height):
                log.warning("viewport differs from the preset", viewport=f"{width}x{height}",
                            expected=f"{browser.width}x{browser.height}")
            prep = PagePrep(browser.driver)
            current: Target | None = None
            while True:
                with self._cond:
                    while self._pending is None and not self._stopping and not self._due():
                        self._cond.wait(None if self._next_at is None else self._next_at - time.monotonic())
                    if self._stopping:
                        return
                    fresh = self._pending is not None
                    if fresh:
                        current, self._pending = self._pending, None
                        self._retry.reset()
                    self._next_at = None
                assert current is not None
                self._show(browser, prep, current, fresh)
        except Exception as exc:  # the browser is broken: the supervisor restarts the encoder
            self._fail(f"browser: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300])
        finally:
            browser.quit()

    def _due(self) -> bool:
        return self._next_at is not None and time.monotonic() >= self._next_at

    def _fail(self, message: str) -> None:
        self.failed = message
        self._report(ChildEvent(kind="error", message=message))

    # ---- one navigation, reload or retry ---------------------------------------------------
    def _show(self, browser: Browser, prep: PagePrep, target: Target, fresh: bool) -> None:
        site = settings_for(target.url, self._sites, target.page)
        self.holding = self._showing
        started = time.monotonic()
        problem = self._load(browser, prep, site, target.url)
        if self._pending is not None or self._stopping:
            return  # superseded: the newer navigation follows at once
        if problem is None:
            readiness.scroll(browser.driver, site)
            readiness.painted(browser.driver)
            recovered, self._failing = self._failing, False
            self._retry.reset()
            self._shown(target.nav)
            if fresh or recovered:
                self._report(ChildEvent(kind="page_loaded", url=target.url, nav=target.nav,
                                        message=f"{time.monotonic() - started:.2f}s"))
            else:
                log.debug("page reloaded", url=target.url, seconds=round(time.monotonic() - started, 2))
            if site.reload_seconds:
                self._next_at = time.monotonic() + site.reload_seconds
            return
        delay = self._retry.next_delay()
        attempt = self._retry.failures
        prep.clear()
        browser.navigate(errorcard.card_url(target.url, problem, time.time(), delay, attempt))
        self._failing = True
        self._shown(target.nav)
        # the supervisor logs the failure as a warning; this line adds the retry schedule
        log.info("page failed; showing the error card", url=target.url, reason=problem, attempt=attempt,
                 retry_in=delay)
        self._report(ChildEvent(kind="page_error", message=problem, url=target.url, nav=target.nav))
        self._next_at = time.monotonic() + delay

    def _shown(self, nav: int) -> None:
        self.holding = False
        self._showing = True
        self.loaded_at = time.monotonic()
        self.loaded_nav = nav

    def _load(self, browser: Browser, prep: PagePrep, site: Site, url: str) -> str | None:
        """Load `url` with its site's settings; None when it is fit to show, else the reason."""
        try:
            prep.apply(site, url)
            browser.navigate(url)
        except TimeoutException:
            return f"the page did not load within {self._page_load_timeout:g}s"
        except WebDriverException as exc:
            return _reason(exc)
        try:
            return readiness.document_problem(browser.driver) or readiness.wait_ready(
                browser.driver, site, cancelled=lambda: self._pending is not None or self._stopping)
        except WebDriverException as exc:  # e.g. the page navigated away while being probed
            return _reason(exc)


def _reason(exc: WebDriverException) -> str:
    """chromedriver's `unknown error: net::ERR_CONNECTION_REFUSED` as a short line for the card."""
    text = (exc.msg or str(exc)).splitlines()[0] if (exc.msg or str(exc)) else type(exc).__name__
    return readiness.explain(text.removeprefix("unknown error: "))[:300]
