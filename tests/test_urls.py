"""URL rules shared by /start and the browser guard: canonical forms, refusals, allowlist matching."""

import pytest

from castd.encoder.navguard import NavGuard
from castd.urls import Allowlist, UrlRejected, parse_target

ALLOW = Allowlist.parse(["http://127.0.0.1:8000", "https://Dash.Local/d/abc/", "https://bücher.example"])


@pytest.mark.parametrize("url, canonical", [
    ("HTTP://127.0.0.1:8000", "http://127.0.0.1:8000/"),
    ("http://127.0.0.1:80/x", "http://127.0.0.1/x"),
    ("https://dash.local:443/d/abc/../x", "https://dash.local/d/x"),
    ("https://dash.local/d/abc/%2E%2e/x", "https://dash.local/d/x"),
    ("https://BÜCHER.example/ü?q=ä", "https://xn--bcher-kva.example/%C3%BC?q=%C3%A4"),
    ("http://[0:0::1]:8000/", "http://[::1]:8000/"),
    ("http://127.0.0.1.:8000/#frag", "http://127.0.0.1:8000/"),
])
def test_canonical_form_is_what_chromium_navigates_to(url, canonical):
    assert parse_target(url).canonical == canonical


@pytest.mark.parametrize("url, needle", [
    ("file:///etc/passwd", "'file:'"), ("data:text/html,hi", "'data:'"), ("javascript:alert(1)", "'javascript:'"),
    ("chrome://settings", "'chrome:'"), ("about:blank", "'about:'"), ("view-source:http://x/", "'view-source:'"),
    ("ftp://x/", "'ftp:'"), ("blob:http://x/uuid", "'blob:'"), ("ws://x/", "'ws:'"), ("//x/", "no scheme"),
    ("http://2130706433/", "numeric host"), ("http://0x7f.1/", "numeric host"), ("http://127.1/", "numeric host"),
    ("http://１２７.０.０.１/", "look-alike"), ("http://exa\u200bmple.com/", "not a letter"),
    ("http://a..b/", "not a valid host"), ("http://xn--zz/", "international"),
    ("http://ex%61mple.com/", "'%'"), ("http://a\\@b/", "backslash"), ("http://u:p@h/", "credentials"),
    ("http://h:0/", "port 0"), ("http://h:99999/", "not a valid URL"), ("http:///x", "no host"),
    ("http://h/\r\nX-Evil: 1", "control"), ("http://h/" + "a" * 5000, "longer"),
])
def test_refused_urls_say_why(url, needle):
    with pytest.raises(UrlRejected) as info:
        parse_target(url)
    assert needle in str(info.value)


@pytest.mark.parametrize("url, allowed", [
    ("http://127.0.0.1:8000/anything", True),
    ("http://127.0.0.1:8001/", False),  # other port
    ("https://127.0.0.1:8000/", False),  # other scheme
    ("http://127.0.0.1:8000.evil.example/", None),  # not a URL at all
    ("http://127.0.0.1:8000@evil.example/", None),
    ("http://evil.example#@127.0.0.1:8000/", False),
    ("https://dash.local/d/abc/", True),
    ("https://dash.local/d/abc/panel?x=1", True),
    ("https://dash.local/d/abcdef", False),  # prefix ends with "/"
    ("https://dash.local/d/abc/../admin", False),
    ("https://dash.local/D/abc/", False),  # paths are case-sensitive
    ("https://dash.local./d/abc/", False),  # trailing dot: another host string
    ("https://xn--bcher-kva.example/", True),
    ("https://bucher.example/", False),
    ("https://bücher.example.evil/", False),
])
def test_allowlist_matches_canonical_urls_only(url, allowed):
    if allowed is None:
        with pytest.raises(UrlRejected):
            parse_target(url)
    else:
        assert ALLOW.allows(parse_target(url)) is allowed


def test_allowlist_entries_are_checked():
    with pytest.raises(UrlRejected, match="^allowlist: 'ftp://x/'"):
        Allowlist.parse(["ftp://x/"])
    with pytest.raises(UrlRejected, match=r"must not contain"):
        Allowlist.parse(["https://x/*"])
    assert not Allowlist.parse([])
    assert Allowlist().allows(parse_target("http://anything.example/"))


def test_navguard_rules_block_top_level_and_allow_prefixes(tmp_path):
    guard = NavGuard(ALLOW.prefixes)
    rules = guard.rules()
    assert rules[0]["action"]["type"] == "block" and rules[0]["condition"]["resourceTypes"] == ["main_frame"]
    assert [r["condition"]["urlFilter"] for r in rules[1:]] == ["|" + p for p in ALLOW.prefixes]
    assert all(r["priority"] > rules[0]["priority"] for r in rules[1:])
    flags = guard.chromium_flags(tmp_path / "ext")
    assert flags == [f"--load-extension={tmp_path / 'ext'}"]
    assert (tmp_path / "ext" / "manifest.json").exists() and (tmp_path / "ext" / "rules.json").exists()
    assert guard.landed_off_list("http://evil.example/") and not guard.landed_off_list("http://127.0.0.1:8000/x")
    assert not guard.landed_off_list("chrome-error://chromewebdata/")
    assert NavGuard([]).chromium_flags(tmp_path / "none") == [] and not (tmp_path / "none").exists()
