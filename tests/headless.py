"""A headless Debian Chromium driven by selenium, for testing the pages castd serves to people.

Debian's binary and driver are passed explicitly (Selenium Manager cannot download anything
here), with the flags that keep Chromium from stalling on network lookups.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
         "--window-size=1400,900"]


@contextlib.contextmanager
def headless_chromium(extra_flags: Sequence[str] = ()) -> Iterator[webdriver.Chrome]:
    # the profile and Chromium's own temp files (org.chromium.Chromium.*, scoped_dir*: it writes them to
    # $TMPDIR whatever --user-data-dir says) in one folder that teardown removes
    work = tempfile.mkdtemp(prefix="castd-test-chromium-")
    profile, tmp = os.path.join(work, "profile"), os.path.join(work, "tmp")
    os.mkdir(tmp)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, *extra_flags]:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    service = Service(executable_path=CHROMEDRIVER, env={**os.environ, "TMPDIR": tmp})
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(work, ignore_errors=True)
