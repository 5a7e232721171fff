"""castd's Browser (castd/encoder/browser.py) with Debian's real Chromium and chromedriver on a real Xvfb."""

from pathlib import Path

from helpers import wait_for

from castd.config import Config
from castd.encoder.browser import Browser
from castd.encoder.xvfb import Xvfb


def test_chromium_starts_at_about_blank_so_the_first_command_waits_for_no_new_tab_page(pages):
    """Started with no URL, Chromium opened chrome://new-tab-page-third-party, and chromedriver's first
    command waited for that page to load (0.2 s of every browser start: bench/browserstart.py). castd's
    startup prefs open about:blank instead; a page then loads as before, and quit leaves nothing behind."""
    config = Config()
    xvfb = Xvfb(config.xvfb, 640, 360)
    browser = Browser(chromium=config.chromium, chromedriver=config.chromedriver, display=xvfb.display,
                      width=640, height=360, page_load_timeout=20)
    try:
        browser.start()
        assert browser.driver.current_url == "about:blank"
        assert browser.driver.window_handles == [browser.driver.current_window_handle], "one tab only"
        browser.navigate(pages.url("/color/ff0000"))
        assert browser.driver.current_url == pages.url("/color/ff0000")
        service = browser.service.process
    finally:
        browser.quit()
        xvfb.stop()
    wait_for(lambda: service.poll() is not None, 10, message="chromedriver ended with quit()")
    assert not Path(browser.profile).exists(), "the profile folder outlived quit()"
