"""The browser thread of the encoder child: owns Chromium, shows pages, reports how it went.

It runs beside the frame loop so a slow page load never delays a frame. Chromium (through
chromedriver) is started from this thread, whose lifetime is the browser's: PR_SET_PDEATHSIG
fires when the starting thread ends, so a dying thread takes chromedriver with it.

A page is shown only when it is fit to show: loaded, not an HTTP error, on the allowlist, and
ready by its site's "ready when". Until then `holding` is set and the frame loop repeats the last
picture, so the TV never sees a half-loaded page on a switch or a reload. A page that fails gets
castd's error card and is tried again with backoff; a page with a reload interval is reloaded on
schedule. A crashed tab or browser is not a page failure: the thread reports it and the
supervisor restarts the child.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from selenium.common.exceptions import TimeoutException, WebDriverException

from castd.config import Site
from castd.encoder import errorcard, readiness
from castd.encoder.browser import Browser, BrowserError
from castd.encoder.navguard import BLOCKED_MESSAGE, NavGuard
from castd.encoder.pageprep import PagePrep
from castd.encoder.sites import settings_for
from castd.logs import log
from castd.protocol import ChildEvent, Failed, PageFailed, PageLoaded, PageOverrides
from castd.children.backoff import Backoff

RETRY_FIRST, RETRY_CAP = 1.0, 60.0  # a failed page is tried again after 1 s, 2 s, 4 s ... 60 s
HEALTH_INTERVAL = 2.0
# selenium messages meaning the renderer or the browser is gone (a reload cannot help)
_FATAL = ("tab crashed", "chrome not reachable", "invalid session id", "session deleted",
          "disconnected", "target window already closed", "no such window", "connection refused",
          "max retries exceeded")


def _first_line(exc: WebDriverException) -> str:
    return ((exc.msg or str(exc) or type(exc).__name__).strip().splitlines() or ["?"])[0][:300]


def _is_fatal(message: str) -> bool:
    lower = message.lower()
    return any(marker in lower for marker in _FATAL)


class BrowserCrashed(RuntimeError):
    """The tab or the browser is gone; only a new encoder child helps."""


class Target(NamedTuple):
    token: int
    nav: int  # negative: castd's own navigation (about:blank when parking): no site, no card, no event
    url: str
    page: PageOverrides | None


class PageThread(threading.Thread):
    def __init__(self, *, chromium: str, chromedriver: str, display: str, width: int, height: int,
                 page_load_timeout: float, heap_mb: int, log_path: Path | None,
                 report: Callable[[ChildEvent], None], navguard: NavGuard | None = None,
                 extra_flags: list[str] | None = None, sites: list[Site] | None = None) -> None:
        super().__init__(name="page", daemon=True)
        self._new_browser = functools.partial(Browser, chromium=chromium, chromedriver=chromedriver,
                                              display=display, width=width, height=height,
                                              page_load_timeout=page_load_timeout, heap_mb=heap_mb,
                                              log_path=log_path, extra_flags=extra_flags)
        self._guard = navguard
        self._page_load_timeout = page_load_timeout
        self._sites = sites or []
        self._report = report
        self._cond = threading.Condition()
        self._pending: Target | None = None
        self._stopping = False
        self._tokens = 0
        self._next_at: float | None = None  # monotonic time of the next reload or retry
        self._retry = Backoff(first=RETRY_FIRST, cap=RETRY_CAP)
        self._failing = False
        self._showing = False  # a page or the card is on screen
        self.holding = False  # the frame loop repeats its last frame while set
        self.failed: str | None = None
        self.loaded_token = 0  # token of the last navigation shown (ready, or replaced by the error card)
        self.loaded_at = 0.0

    def navigate(self, url: str, nav: int, page: PageOverrides | None = None) -> int:
        """Ask for `url`; a newer request replaces one not yet started. Returns a token that
        `loaded_token` equals once this very navigation is shown (or its error card is)."""
        with self._cond:
            self._tokens += 1
            self._pending = Target(self._tokens, nav, url, page)
            self._cond.notify()
            return self._tokens

    def stop(self, timeout: float = 3.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self.join(timeout)

    def run(self) -> None:
        started = time.monotonic()
        try:
            browser = self._new_browser()
        except BrowserError as exc:
            self._fail(str(exc))
            return
        log.debug("browser ready", seconds=round(time.monotonic() - started, 2))
        viewport_checked = False
        try:
            prep = PagePrep(browser.driver)
            current: Target | None = None
            while True:
                with self._cond:
                    if self._pending is None and not self._stopping and not self._due():
                        self._cond.wait(HEALTH_INTERVAL if self._next_at is None else
                                        max(0.0, min(HEALTH_INTERVAL, self._next_at - time.monotonic())))
                    if self._stopping:
                        return
                    fresh = self._pending is not None
                    due = fresh or self._due()
                    if fresh:
                        current, self._pending = self._pending, None
                        self._retry.reset()
                    if due:
                        self._next_at = None
                if due and current is not None:
                    self._show(browser, prep, current, fresh)
                else:
                    self._check_health(browser)
                    if not viewport_checked:
                        viewport_checked = self._check_viewport(browser)
        except BrowserCrashed as exc:
            self._fail(str(exc))
        except Exception as exc:  # the browser is broken: the supervisor restarts the encoder
            self._fail(f"browser: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300])
        finally:
            browser.quit()

    def _due(self) -> bool:
        return self._next_at is not None and time.monotonic() >= self._next_at

    @staticmethod
    def _check_viewport(browser: Browser) -> bool:
        """Once the window has settled (kiosk applies after start-up), the page must be exactly
        the preset's size, or the picture would carry borders or be cut."""
        try:
            width, height = browser.viewport()
        except WebDriverException:
            return False
        if (width, height) != (browser.width, browser.height):
            log.warning("viewport differs from the preset", viewport=f"{width}x{height}",
                        expected=f"{browser.width}x{browser.height}")
        return True

    def _check_health(self, browser: Browser) -> None:
        """Between loads, make sure Chromium and its renderer still answer."""
        try:
            browser.driver.execute_script("return 1")
        except WebDriverException as exc:
            message = _first_line(exc)
            if _is_fatal(message):
                raise BrowserCrashed(f"browser crashed: {message}") from None

    def _fail(self, message: str) -> None:
        self.failed = message
        self._report(Failed(error=message))

    # ---- one navigation, reload or retry ---------------------------------------------------
    def _show(self, browser: Browser, prep: PagePrep, target: Target, fresh: bool) -> None:
        if target.nav < 0:  # castd's own page (about:blank): just load it
            self._failing = False
            prep.apply(settings_for(target.url, []), target.url)  # drops the last site's set-up
            self._load_plain(browser, target.url)
            self._shown(target.token)
            return
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
            self._shown(target.token)
            if fresh or recovered:
                self._report(PageLoaded(url=target.url, nav=target.nav,
                                        seconds=round(time.monotonic() - started, 2)))
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
        self._shown(target.token)
        # the supervisor logs the failure as a warning (one line per attempt); this adds the retry schedule
        log.debug("page failed; showing the error card", url=target.url, reason=problem, attempt=attempt,
                 retry_in=delay)
        self._report(PageFailed(error=problem, url=target.url, nav=target.nav))
        self._next_at = time.monotonic() + delay

    def _shown(self, token: int) -> None:
        self.holding = False
        self._showing = True
        self.loaded_at = time.monotonic()
        self.loaded_token = token

    def _load_plain(self, browser: Browser, url: str) -> None:
        try:
            browser.navigate(url)
        except WebDriverException as exc:
            _reason(exc, url)  # raises BrowserCrashed when the browser is gone; else nothing to show

    def _load(self, browser: Browser, prep: PagePrep, site: Site, url: str) -> str | None:
        """Load `url` with its site's settings; None when it is fit to show, else the reason."""
        try:
            prep.apply(site, url)
            browser.navigate(url)
        except TimeoutException:
            return f"the page did not load within {self._page_load_timeout:g}s"
        except WebDriverException as exc:
            return _reason(exc, url)
        try:
            if self._guard and self._guard.landed_off_list(browser.driver.current_url):
                return BLOCKED_MESSAGE
            return readiness.document_problem(browser.driver) or readiness.wait_ready(
                browser.driver, site, cancelled=lambda: self._pending is not None or self._stopping)
        except WebDriverException as exc:  # e.g. the page navigated away while being probed
            return _reason(exc, url)


def _reason(exc: WebDriverException, url: str) -> str:
    """chromedriver's `unknown error: net::ERR_CONNECTION_REFUSED` as a short line for the card;
    a crashed tab or browser raises BrowserCrashed instead (no card can help there)."""
    message = _first_line(exc)
    if _is_fatal(message):
        raise BrowserCrashed(f"browser crashed loading {url}: {message}")
    return readiness.explain(message.removeprefix("unknown error: "))[:300]
