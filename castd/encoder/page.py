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

A hung page is (castd/encoder/pagewatch.py): the thread says what it waits for in the browser
(`call`), the frame loop asks `check_hang` on every frame, and a page that does not answer in time
gets a new browser in this child (its renderer is killed, which frees the blocked call) and then,
if it hangs again, a new child.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Iterator, NamedTuple

from selenium.common.exceptions import TimeoutException, WebDriverException

from castd.config import Site
from castd.encoder import errorcard, readiness
from castd.encoder.browser import Browser, BrowserError
from castd.encoder.navguard import BLOCKED_MESSAGE, NavGuard
from castd.encoder.pageprep import PagePrep
from castd.encoder.pagewatch import Call, Cure, PageWatch
from castd.encoder.sites import settings_for
from castd.logs import log
from castd.protocol import ChildEvent, FailCode, Failed, PageFailed, PageHung, PageLoaded, PageOverrides
from castd.children.backoff import Backoff

RETRY_FIRST, RETRY_CAP = 1.0, 60.0  # a failed page is tried again after 1 s, 2 s, 4 s ... 60 s
HEALTH_INTERVAL = 1.0  # a probe between loads (a few ms of chromedriver and renderer time): see pagewatch.py
STOP_WAIT = 2.0  # the thread ends within this after stop(): a browser quit takes 0.3-0.8 s here
# What a healthy browser needs (page_hang_seconds are added): a start takes 1-2 s here (1.1 s in Debian 13),
# a few on a Raspberry Pi; a quit 0.3-0.8 s. The start's budget was page_load_timeout (20 s), so a start
# that hung was found after 25 s; selenium's own limit on a chromedriver request is 120 s.
BROWSER_START_BUDGET = 10.0
BROWSER_QUIT_BUDGET = 5.0
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


class PageHungError(RuntimeError):
    """The page watchdog's last step: this child gives up so the supervisor starts a new one."""

    code: FailCode = "page_hung"


class Target(NamedTuple):
    token: int
    nav: int  # negative: castd's own navigation (about:blank when parking): no site, no card, no event
    url: str
    page: PageOverrides | None


class PageThread(threading.Thread):
    def __init__(self, *, chromium: str, chromedriver: str, display: str, width: int, height: int,
                 page_load_timeout: float, heap_mb: int, log_path: Path | None,
                 report: Callable[[ChildEvent], None], navguard: NavGuard | None = None,
                 extra_flags: list[str] | None = None, sites: list[Site] | None = None,
                 hang_seconds: float = 5.0) -> None:
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
        # the page watchdog: `call` is written by this thread, read (and acted on) by the frame loop's
        self.call: Call | None = None
        self._hang_seconds = hang_seconds
        self._watch = PageWatch()
        self._cure = Cure.NONE  # set by the frame loop for a hung page: what this thread does next
        self._browser: Browser | None = None
        self._current: Target | None = None

    def navigate(self, url: str, nav: int, page: PageOverrides | None = None) -> int:
        """Ask for `url`; a newer request replaces one not yet started. Returns a token that
        `loaded_token` equals once this very navigation is shown (or its error card is)."""
        with self._cond:
            self._tokens += 1
            self._pending = Target(self._tokens, nav, url, page)
            self._cond.notify()
            return self._tokens

    def stop(self, timeout: float = STOP_WAIT) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self.join(timeout)

    def run(self) -> None:
        """One browser after another: a new one only when the page watchdog asked for it."""
        renewing_since: float | None = None
        while True:
            started = time.monotonic()
            try:
                browser = self._new_browser()  # no process yet: a missing binary fails here, at once
                self._browser = browser
                with self._waiting("browser start", BROWSER_START_BUDGET):
                    browser.start()
            except BrowserError as exc:
                self._browser = None
                if self._cure is Cure.NEW_BROWSER and not self._stopping:  # the watchdog ended a stuck start
                    self._cure = Cure.NONE
                    continue
                if self._cure is not Cure.NEW_ENCODER:  # (that one: the frame loop ends the child)
                    self._fail(str(exc))
                return
            log.debug("browser ready", seconds=round(time.monotonic() - started, 2))
            if renewing_since is not None:
                log.info("new browser after a hung page", seconds=round(time.monotonic() - renewing_since, 2))
            try:
                self._serve(browser)
                return  # stopping
            except Exception as exc:
                if self._cure is Cure.NEW_ENCODER:  # the frame loop reports the hang and ends the child
                    return
                if self._cure is not Cure.NEW_BROWSER:  # the browser is broken: the supervisor restarts the encoder
                    self._fail(str(exc) if isinstance(exc, BrowserCrashed) else
                               f"browser: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300])
                    return
            finally:
                self.call = None
                try:
                    with self._waiting("browser quit", BROWSER_QUIT_BUDGET):
                        browser.quit()
                finally:
                    self._browser = None  # (its PIDs may be reused once it has quit)
            self._cure = Cure.NONE
            renewing_since = self._watch.cured_at or time.monotonic()  # (the frame loop's clock: monotonic too)
            with self._cond:  # the new browser shows what was on screen (unless something newer waits)
                if self._pending is None and self._current is not None:
                    self._pending = self._current

    def _serve(self, browser: Browser) -> None:
        """Show pages in `browser` until stop() (returns) or a fault (raises)."""
        viewport_checked = False
        prep = PagePrep(browser.driver)
        while True:
            with self._cond:
                if self._pending is None and not self._stopping and not self._due() \
                        and self._cure is Cure.NONE:
                    self._cond.wait(HEALTH_INTERVAL if self._next_at is None else
                                    max(0.0, min(HEALTH_INTERVAL, self._next_at - time.monotonic())))
                if self._stopping:
                    return
                if self._cure is not Cure.NONE:
                    raise BrowserCrashed(f"the page watchdog asked for a {self._cure.value}")
                fresh = self._pending is not None
                due = fresh or self._due()
                if fresh:
                    self._current, self._pending = self._pending, None
                    self._retry.reset()
                if due:
                    self._next_at = None
            current = self._current
            if due and current is not None:
                self._show(browser, prep, current, fresh)
            else:
                self._check_health(browser)
                if not viewport_checked:
                    viewport_checked = self._check_viewport(browser)

    # ---- the page watchdog -----------------------------------------------------------------
    @contextlib.contextmanager
    def _waiting(self, what: str, budget: float) -> Iterator[None]:
        """Tell the watchdog this thread waits on the browser for `what`, which a healthy browser
        does within `budget` seconds (page_hang_seconds are added)."""
        self.call = Call(what, time.monotonic(), budget + self._hang_seconds)
        try:
            yield
        finally:
            self.call = None

    def check_hang(self, now: float) -> None:
        """The frame loop's side of the watchdog (it never blocks on the browser): ask PageWatch,
        report a hang and cure it. Raises PageHungError for the last step (a new encoder)."""
        call = self.call
        cure = self._watch.decide(now, call)
        if cure is Cure.NONE:
            return
        target = self._current
        reason = self._watch.reason or "the browser did not answer"
        self._report(PageHung(nav=target.nav if target else -1, url=target.url if target else "",
                              reason=reason, cure=cure.value))
        if cure is Cure.NEW_BROWSER:
            self.holding = True  # the TV keeps the last picture until the new browser shows the page
        self._cure = cure
        with self._cond:
            self._cond.notify()
        # the blocked call fails at once, so this thread moves on (a new browser, or a quick end): a page's
        # call by killing its renderer; a start or a quit, which no renderer holds up, by killing the browser
        browser = self._browser
        whole = call is not None and call.what in ("browser start", "browser quit")
        killed = [] if browser is None else browser.kill_tree() if whole else browser.kill_renderers()
        log.debug("page hung: renderer killed", cure=cure.value, pids=",".join(map(str, killed)))
        if cure is Cure.NEW_ENCODER:
            raise PageHungError(f"page hung again after a new browser: {reason}")

    def _due(self) -> bool:
        return self._next_at is not None and time.monotonic() >= self._next_at

    def _check_viewport(self, browser: Browser) -> bool:
        """Once the window has settled (kiosk applies after start-up), the page must be exactly
        the preset's size, or the picture would carry borders or be cut."""
        try:
            with self._waiting("probe", 0.0):
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
            with self._waiting("probe", 0.0):
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
            with self._waiting("page load", self._page_load_timeout):
                prep.apply(settings_for(target.url, []), target.url)  # drops the last site's set-up
                self._load_plain(browser, target.url)
            self._shown(target.token)
            return
        site = settings_for(target.url, self._sites, target.page)
        self.holding = self._showing
        started = time.monotonic()
        ready_wait = site.ready_timeout if site.ready_selector or site.ready_network_idle else 0.0
        with self._waiting("page load", self._page_load_timeout + ready_wait):
            problem = self._load(browser, prep, site, target.url)
            if self._pending is not None or self._stopping:
                return  # superseded: the newer navigation follows at once
            if problem is None:
                readiness.scroll(browser.driver, site)
                readiness.painted(browser.driver)
        if problem is None:
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
        with self._waiting("error card", 0.0):  # castd's own data: page, drawn in milliseconds
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
            browser.navigate(url, painted=False)  # (_show waits for the paint once the page is ready)
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
