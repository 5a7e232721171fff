"""Chromium on the private X display, driven by selenium.

Headed Chromium on Xvfb, because grabbing the X screen costs ~4 ms a frame where any DevTools
screenshot costs 26-130 ms. Kiosk mode at exactly the preset's size: no browser UI, no info
bars, no first-run or translate bubbles; the page is the whole picture.

The profile is a fresh folder under $TMPDIR, which the encoder child points at a folder of its own
in castd's runtime folder (ChildParams.tmp_dir), so the profile and what Chromium writes beside it
(`org.chromium.Chromium.*`, `scoped_dir*`) go with that folder even when the child is SIGKILLed.
"""

from __future__ import annotations

import os
import signal
import shutil
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

from castd.procutil import descendants, kill_tree, with_pdeathsig

CHROMIUM_FLAGS = [
    "--kiosk",
    "--window-position=0,0",
    "--force-device-scale-factor=1",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-infobars",
    "--disable-session-crashed-bubble",
    "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--hide-scrollbars",
    "--noerrdialogs",
    "--mute-audio",
    "--password-store=basic",
    "--autoplay-policy=no-user-gesture-required",
]

# Chromium opens at about:blank, not at its New Tab Page. chromedriver starts it with no URL, so it
# opened chrome://new-tab-page-third-party (a WebUI page, its own renderer), and the first command after the
# start waited for that page to load. `python -m bench.browserstart --starts 5` (Debian 12's Chromium, side by
# side, medians): start 0.47 s against 0.55, first command 0.015 against 0.205, start to a local page on
# screen 0.61 s against 0.86 (ratio 0.71). Every cold start, restart after a crash and new browser after a
# hung page gains that. 4 = "open these URLs" (Chromium's SessionStartupPref::URLS).
STARTUP_PREFS = {"session.restore_on_startup": 4, "session.startup_urls": ["about:blank"]}


class BrowserError(RuntimeError):
    pass


def chromium_binary(configured: str) -> str:
    """The real binary: Debian's /usr/bin/chromium is a shell wrapper around /usr/lib/chromium/chromium."""
    for candidate in (configured, "/usr/lib/chromium/chromium", shutil.which("chromium") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BrowserError(f"chromium not found at {configured}")


class DriverService(Service):
    """chromedriver started as `setpriv --pdeathsig KILL -- chromedriver --port=N ...` (procutil.with_pdeathsig):
    it dies with the page thread, and no Python runs between fork and exec (a preexec_fn hung the second
    browser's start on Debian 13; castd/procutil.py has the stack). setpriv execs, so `process.pid` is
    chromedriver's."""

    def __init__(self, chromedriver: str, **kwargs) -> None:
        self._argv = with_pdeathsig([chromedriver])
        super().__init__(executable_path=self._argv[0], **kwargs)
        self.path = self._argv[0]  # (selenium would take $SE_CHROMEDRIVER over it: castd's config names the driver)

    def command_line_args(self) -> list[str]:
        return [*self._argv[1:], *super().command_line_args()]


class Browser:
    """One Chromium window filling the display; created, started and used from one thread."""

    driver: webdriver.Chrome  # set by start()

    def __init__(self, *, chromium: str, chromedriver: str, display: str, width: int, height: int,
                 page_load_timeout: float, heap_mb: int = 512, log_path: Path | None = None,
                 extra_flags: list[str] | None = None) -> None:
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="castd-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium_binary(chromium)
        for flag in [*CHROMIUM_FLAGS, *(extra_flags or [])]:
            options.add_argument(flag)
        options.add_argument(f"--window-size={width},{height}")
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument(f"--js-flags=--max-old-space-size={heap_mb}")
        if os.geteuid() == 0:
            options.add_argument("--no-sandbox")
        options.add_experimental_option("excludeSwitches", ["enable-automation", "enable-logging"])
        options.add_experimental_option("useAutomationExtension", False)
        options.add_experimental_option("prefs", STARTUP_PREFS)
        options.page_load_strategy = "normal"
        if not os.access(chromedriver, os.X_OK):
            raise BrowserError(f"chromedriver not found at {chromedriver}")
        env = dict(os.environ, DISPLAY=display)
        # WARNING: at its default level chromedriver logs every command with its parameters, and
        # those carry the sites' cookies, headers and localStorage values.
        self.service = DriverService(chromedriver, env=env, service_args=["--log-level=WARNING"],
                                     log_output=str(log_path) if log_path else None)
        self._options = options
        self._page_load_timeout = page_load_timeout

    def start(self) -> None:
        """Start chromedriver and Chromium (1-2 s here). Split from __init__ so that the page watchdog
        can end a start that hangs (kill_tree) while this call blocks in another thread."""
        try:
            self.driver = webdriver.Chrome(service=self.service, options=self._options)
        except Exception as exc:  # (a chromedriver killed mid-request raises urllib3's errors, not selenium's)
            self.kill_tree()
            shutil.rmtree(self.profile, ignore_errors=True)
            message = exc.msg if isinstance(exc, WebDriverException) and exc.msg else str(exc) or type(exc).__name__
            raise BrowserError(f"chromium did not start: {message.splitlines()[0] if message else ''}"[:300]) from exc
        self.driver.set_page_load_timeout(self._page_load_timeout)
        self.driver.set_script_timeout(5)

    def navigate(self, url: str, painted: bool = True) -> None:
        """Load `url`, wait for its load event and then (`painted`) for two animation frames, so the page
        is on the screen (not just loaded) when this returns. Raises WebDriverException on failure. A caller
        that waits for the paint itself after more checks (encoder/page.py, readiness.painted) passes False:
        two frames at 60 Hz, ~33 ms of every page switch, waited twice otherwise."""
        self.driver.get(url)
        if painted:
            self.driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "requestAnimationFrame(() => requestAnimationFrame(() => done()));")

    def viewport(self) -> tuple[int, int]:
        w, h = self.driver.execute_script("return [window.innerWidth, window.innerHeight]")
        return int(w), int(h)

    def kill_renderers(self) -> list[int]:
        """SIGKILL the renderers of the page (not the extension's, not the browser's own UI): a hung
        page's blocked chromedriver call then fails at once with "tab crashed" (measured: 3 ms after
        the kill) instead of after page_load_timeout. Safe from another thread (only /proc and kill).
        With no such renderer (the hang is elsewhere) chromedriver itself is killed. Returns the PIDs."""
        service = self.service.process
        if service is None:
            return []
        pids = []
        for pid in descendants(service.pid):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()  # zygote children: one string, spaces
            except OSError:
                continue
            if b"--type=renderer" in command and b"--extension-process" not in command \
                    and b"--top-chrome-webui" not in command:
                pids.append(pid)
        if not pids and service.poll() is None:  # our child, not yet reaped: its PID is still its own
            pids = [service.pid]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def kill_tree(self) -> list[int]:
        """SIGKILL chromedriver and everything below it (Chromium, its zygotes, renderers): for a start or a
        quit that hangs, where no renderer is to blame. Safe from another thread. Returns the PIDs."""
        service = self.service.process
        if service is None or service.poll() is not None:  # never started, or already reaped
            return []
        return kill_tree(service.pid, include_root=True)

    def quit(self) -> None:
        try:
            driver = getattr(self, "driver", None)
            if driver is not None:
                driver.quit()
        except Exception:  # the browser may already be gone; the process group kill covers it
            pass
        shutil.rmtree(self.profile, ignore_errors=True)
