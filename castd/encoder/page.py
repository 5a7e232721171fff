"""The browser thread of the encoder child: owns Chromium, loads pages, reports how it went.

It runs beside the frame loop so a slow page load never delays a frame. Chromium (through
chromedriver) is started from this thread, whose lifetime is the browser's: PR_SET_PDEATHSIG
fires when the starting thread ends, so a dying thread takes chromedriver with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from selenium.common.exceptions import TimeoutException, WebDriverException

from castd.encoder.browser import Browser, BrowserError
from castd.encoder.navguard import BLOCKED_MESSAGE, NavGuard
from castd.logs import log
from castd.protocol import ChildEvent


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


class PageThread(threading.Thread):
    def __init__(self, *, chromium: str, chromedriver: str, display: str, width: int, height: int,
                 page_load_timeout: float, heap_mb: int, log_path: Path | None,
                 report: Callable[[ChildEvent], None], navguard: NavGuard | None = None,
                 extra_flags: list[str] | None = None) -> None:
        super().__init__(name="page", daemon=True)
        self._browser_args = dict(chromium=chromium, chromedriver=chromedriver, display=display,
                                  width=width, height=height, page_load_timeout=page_load_timeout,
                                  heap_mb=heap_mb, log_path=log_path, extra_flags=extra_flags)
        self._guard = navguard
        self._report = report
        self._cond = threading.Condition()
        self._pending: tuple[int, str] | None = None
        self._stopping = False
        self.failed: str | None = None
        self.loaded_token = 0  # token of the last navigation that finished loading (or failed to)
        self.loaded_at = 0.0
        self._tokens = 0

    def navigate(self, url: str, nav: int) -> int:
        """Ask for `url`; a newer request replaces one not yet started. Returns a token that
        `loaded_token` equals once this very navigation has finished."""
        with self._cond:
            self._tokens += 1
            self._pending = (self._tokens, nav, url)
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
            browser = Browser(**self._browser_args)
        except BrowserError as exc:
            self.failed = str(exc)
            self._report(ChildEvent(kind="error", message=self.failed))
            return
        log.debug("browser ready", seconds=round(time.monotonic() - started, 2))
        viewport_checked = False
        try:
            while True:
                with self._cond:
                    if self._pending is None and not self._stopping:
                        self._cond.wait(HEALTH_INTERVAL)
                    if self._stopping:
                        return
                    job, self._pending = self._pending, None
                if job is None:
                    self._check_health(browser)
                    if not viewport_checked and not self.failed:
                        viewport_checked = self._check_viewport(browser)
                else:
                    self._load(browser, *job)
                if self.failed:
                    return
        finally:
            browser.quit()

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
                self._fail(f"browser crashed: {message}")

    def _fail(self, reason: str) -> None:
        self.failed = reason
        self._report(ChildEvent(kind="error", message=reason))

    def _load(self, browser: Browser, token: int, nav: int, url: str) -> None:
        started = time.monotonic()
        try:
            browser.navigate(url)
        except TimeoutException:
            event = ChildEvent(kind="page_error", message="page load timed out", url=url, nav=nav)
        except WebDriverException as exc:
            message = _first_line(exc)
            if _is_fatal(message):
                self._fail(f"browser crashed loading {url}: {message}")
                return
            event = ChildEvent(kind="page_error", message=message, url=url, nav=nav)
        else:
            event = ChildEvent(kind="page_loaded", url=url, nav=nav,
                               message=f"{time.monotonic() - started:.2f}s")
            if self._guard and self._guard.landed_off_list(browser.driver.current_url):
                event = ChildEvent(kind="page_error", message=BLOCKED_MESSAGE, url=url, nav=nav)
        self.loaded_at = time.monotonic()
        self.loaded_token = token
        if nav >= 0:  # negative: castd's own navigation (about:blank when parking)
            self._report(event)
