"""Every webhook sender against the real daemon (with Chromium): named dashboards, JSON under any
Content-Type, forms, the GET form for one-URL senders (only with a token), and the two rate limits
(page switches vs starts that launch a browser). One daemon with a token for the module."""

import os
import secrets
import subprocess
import sys

import httpx
import pytest
from helpers import ROOT, Daemon, wait_for

TOKEN = secrets.token_urlsafe(24)
COLOURS = {"red": "ff0000", "green": "00ff00", "blue": "0000ff", "white": "ffffff", "grey": "808080",
           "black": "000000", "yellow": "ffff00", "cyan": "00ffff", "magenta": "ff00ff", "navy": "000080",
           "olive": "808000"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


def write_config(path, pages, extra: str = "") -> str:
    text = "".join(f'[[dashboards]]\nname = "{name}"\nurl = "{pages.url("/color/" + rgb)}"\n\n'
                   for name, rgb in COLOURS.items()) + extra
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


@pytest.fixture(scope="module")
def hooks(tmp_path_factory, pages):
    """castd with a token, eleven named colour dashboards, starts limited to 3 at once (then 1 a minute)
    and page switches to 16 at once (then 6 a minute): the content-type test takes 6 of them, the
    limit test needs 10 more."""
    folder = tmp_path_factory.mktemp("hooks")
    config = write_config(folder / "castd.toml", pages)
    d = Daemon(runtime_dir=folder / "run", token=TOKEN, args=["--config", config],
               env_extra={"CASTD_RATE_LIMIT_BURST": "3", "CASTD_RATE_LIMIT_PER_MINUTE": "1",
                          "CASTD_SWITCH_RATE_LIMIT_BURST": "16", "CASTD_SWITCH_RATE_LIMIT_PER_MINUTE": "6"}).start()
    yield d
    d.finish()


def shows(daemon, name):
    status = daemon.status()
    return status["dashboard"] == name and status["url"].endswith(COLOURS[name]) and status


def test_dashboards_are_listed_by_the_api_and_the_cli(hooks, pages):
    listing = hooks.get("/dashboards").json()
    assert [b["name"] for b in listing["dashboards"]] == list(COLOURS)
    assert listing["dashboards"][0] == {"name": "red", "url": pages.url("/color/ff0000"), "quality": "720p",
                                        "devices": []}
    assert hooks.get("/dashboards", headers={}).status_code == 401
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTD_")}
    out = subprocess.run([sys.executable, "-m", "castd", "dashboards"], capture_output=True, text=True, cwd=ROOT,
                         env={**env, "CASTD_PORT": str(hooks.port), "CASTD_TOKEN": TOKEN}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert all(f"  {name} " in out.stdout for name in COLOURS), out.stdout


def test_an_unknown_name_is_a_404_that_lists_the_names(hooks):
    response = hooks.post("/start", json={"dashboard": "purple"})
    assert response.status_code == 404
    assert "no dashboard named 'purple'; dashboards: red, green, blue" in response.json()["error"]
    assert hooks.status()["state"] == "idle"


def test_every_content_type_and_the_get_form_start_a_dashboard(hooks):
    first = hooks.post("/start", json={"dashboard": "red"})  # application/json, header token
    assert first.status_code == 200 and first.json()["dashboard"] == "red", first.text
    session = first.json()["session"]
    wait_for(lambda: hooks.status()["state"] == "streaming", 60, message="streaming")
    senders = [
        ("green", dict(content=b'{"dashboard": "green"}', headers={**hooks.auth(), "content-type": "text/plain"})),
        ("blue", dict(content=f'{{"dashboard": "blue", "token": "{TOKEN}"}}'.encode(), headers={})),  # no type
        ("white", dict(content=f"dashboard=white&token={TOKEN}".encode(), headers=FORM)),  # IFTTT's form
        ("grey", dict(content=b'{"dashboard": "grey"}',
                      headers={**hooks.auth(), "content-type": "application/octet-stream"})),
    ]
    for name, kw in senders:
        response = hooks.post("/start", **kw)
        assert response.status_code == 200, (name, response.text)
        assert response.json()["session"] == session and response.json()["switched"] is True
        wait_for(lambda: shows(hooks, name), 20, message=f"{name} on screen")
    # the GET form, for senders that can only call a URL: the token in the query
    response = hooks.get("/start", params={"dashboard": "black", "token": TOKEN}, headers={})
    assert response.status_code == 200 and response.json()["session"] == session, response.text
    wait_for(lambda: shows(hooks, "black"), 20, message="black on screen")
    assert hooks.get("/start", params={"dashboard": "red"}, headers={}).status_code == 401
    head = httpx.head(hooks.base + "/start", params={"dashboard": "red", "token": TOKEN}, timeout=10)
    assert head.status_code == 405  # link checkers send HEAD by themselves: never an action
    assert hooks.get("/stop", headers={}).status_code == 401
    assert shows(hooks, "black")["session"] == session
    assert hooks.get("/stop", params={"token": TOKEN}, headers={}).json()["stopped"] == session
    hooks.wait_state("idle")


def test_page_switches_have_their_own_looser_limit(hooks):
    """Starts: 3 at once (the 404 and the first start above took two; one a minute comes back).
    Switches: 16 at once, 6 of them spent above, refilled at 6 a minute."""
    hooks.post("/stop")
    first = hooks.post("/start", json={"dashboard": "red"})
    assert first.status_code == 200, first.text
    wait_for(lambda: hooks.status()["state"] == "streaming", 60, message="streaming")
    names = [n for n in COLOURS if n != "red"][:10]
    codes = [hooks.post("/start", json={"dashboard": name}).status_code for name in names]
    assert codes == [200] * 10, codes  # ten dashboards in (well under) ten seconds
    wait_for(lambda: shows(hooks, names[-1]), 20, message="the tenth dashboard on screen")
    for _ in range(4):  # what refilled meanwhile (6 a minute), then the switch bucket is empty
        limited = hooks.post("/start", json={"dashboard": "red"})
        if limited.status_code == 429:
            break
    assert limited.status_code == 429 and "too many page switches" in limited.json()["error"], limited.text
    assert 1 <= int(limited.headers["retry-after"]) <= 11
    # a start that needs a new session (another quality) draws on the start bucket: now empty
    new = hooks.post("/start", json={"dashboard": "red", "quality": "1080p"})
    assert new.status_code == 429 and "too many starts" in new.json()["error"], new.text
    assert hooks.status()["quality"] == "720p"  # nothing changed
    hooks.post("/stop")
    hooks.wait_state("idle")


def test_get_changes_nothing_without_a_configured_token(tmp_path, pages):
    d = Daemon(runtime_dir=tmp_path / "run", args=["--config", write_config(tmp_path / "c.toml", pages)]).start()
    try:
        for path in ("/start?dashboard=red", "/stop", "/next"):
            response = d.get(path)
            assert response.status_code == 405 and "only when castd has a token" in response.json()["error"]
            assert response.headers["allow"] == "POST"
        assert d.status()["state"] == "idle"
    finally:
        d.finish()
