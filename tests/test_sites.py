"""[[sites]] in the config, and which site a URL gets: pure functions, no browser."""

import base64
import json

import pytest

from castd.config import ConfigError, Site, load_config
from castd.encoder.errorcard import card_html
from castd.encoder.pageprep import new_document_script
from castd.encoder.sites import match_site, origin_of, settings_for, site_secrets
from castd.logs import register_secret
from castd.protocol import PageOverrides

SITES = [
    Site(prefix="http://ha.local:8123/", zoom=1.5),
    Site(prefix="http://ha.local:8123/lovelace/tv", zoom=2.0, ready_selector="hui-view"),
    Site(prefix="https://grafana.example/", reload_seconds=300),
]


@pytest.mark.parametrize("url, zoom", [
    ("http://ha.local:8123/lovelace/0", 1.5),
    ("http://ha.local:8123/lovelace/tv?kiosk", 2.0),  # the longest prefix wins
    ("http://HA.local:8123/x", 1.5),  # host names are case-insensitive
    ("http://ha.local:8124/", None),  # another port is another origin
    ("https://ha.local:8123/", None),  # and another scheme
    ("http://ha.local.evil.example:8123/", None),  # a prefix never matches a longer host name
    ("http://evil.example/?http://ha.local:8123/", None),
    ("https://grafana.example:443/d/abc", 1.0),  # the default port is the same origin
])
def test_match_site_by_origin_and_path(url, zoom):
    site = match_site(url, SITES)
    assert (site.zoom if site else None) == zoom


def test_origin_of():
    assert origin_of("https://grafana.example:443/x") == "https://grafana.example"
    assert origin_of("http://[::1]:8080/") == "http://[::1]:8080"


def test_request_overrides_beat_the_site():
    url = "http://ha.local:8123/lovelace/tv"
    settings = settings_for(url, SITES, PageOverrides(zoom=0.5, reload_seconds=0))
    assert settings.zoom == 0.5 and settings.reload_seconds == 0 and settings.ready_selector == "hui-view"
    assert settings_for("http://other/", SITES, PageOverrides(ready_selector="#x")).ready_selector == "#x"
    assert settings_for(url, SITES, PageOverrides()).zoom == 2.0


def test_site_secrets_cover_the_forms_they_travel_in():
    tokens = json.dumps({"access_token": "ey.long.lived", "token_type": "Bearer", "hassUrl": "http://ha"})
    site = Site(prefix="http://ha/", cookies={"s": "c00kie"}, headers={"X-Key": "h3ader"},
                local_storage={"hassTokens": tokens}, basic_auth="me:pa55word")
    found = set(site_secrets([site]))
    assert {"c00kie", "h3ader", tokens, "ey.long.lived", "me:pa55word", "pa55word",
            base64.b64encode(b"me:pa55word").decode()} <= found
    assert "Bearer" not in found and "http://ha" not in found


def test_site_script_is_guarded_by_origin_and_leaves_zoom_to_the_device_metrics():
    site = Site(prefix="http://ha.local:8123/", zoom=1.5, css="app-header { display: none }",
                local_storage={"k": "v"})
    script = new_document_script(site, "http://ha.local:8123/lovelace/0")
    assert 'location.origin !== "http://ha.local:8123"' in script
    assert "app-header" in script
    assert "zoom" not in script  # CSS zoom scaled vh too; zoom is the tab's device scale factor (pageprep.py)


def test_error_card_escapes_and_scrubs():
    register_secret("s3cr3t-value")
    html = card_html("http://x/?token=abc&<b>=1&q=s3cr3t-value", "<script>alert(1)</script>", 0, 4, 2)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "token=abc" not in html and "s3cr3t-value" not in html
    assert "attempt 2" in html


@pytest.mark.parametrize("toml, key", [
    ('[[sites]]\nprefix = "ftp://x/"\n', "sites[0]: prefix"),
    ('[[sites]]\nprefix = "http://x/"\nzoom = 9\n', "sites[0]: zoom"),
    ('[[sites]]\nprefix = "http://x/"\n[[sites]]\nprefix = "http://y/"\nreload_seconds = 0.2\n',
     "sites[1]: reload_seconds"),
    ('[[sites]]\nprefix = "http://x/"\ncolor_scheme = "sepia"\n', "sites[0]: color_scheme"),
    ('[[sites]]\nprefix = "http://x/"\nbasic_auth = "nopassword"\n', "sites[0]: basic_auth"),
    ('[[sites]]\nprefix = "http://x/"\nheaders = { "Bad Header" = "v" }\n', "sites[0]: headers"),
    ('[[sites]]\nprefix = "http://x/"\ncookies = { a = "x;y" }\n', "sites[0]: cookies"),
    ('[[sites]]\nprefix = "http://x/"\nready_timeout = 0\n', "sites[0]: ready_timeout"),
    ('[[sites]]\nprefix = "http://x/"\nzom = 2\n', "sites[0]"),
    ('[[sites]]\nzoom = 2\n', "prefix"),
])
def test_bad_sites_name_the_key(tmp_path, toml, key):
    file = tmp_path / "castd.toml"
    file.write_text(toml)
    file.chmod(0o600)  # files with secrets must be private
    with pytest.raises(ConfigError) as info:
        load_config(file, environ={})
    assert key in str(info.value), str(info.value)


def test_sites_load_from_toml(tmp_path):
    file = tmp_path / "castd.toml"
    file.write_text('[[sites]]\nprefix = "http://ha.local:8123/"\nzoom = 1.25\nreload_seconds = 600\n'
                    'local_storage = { hassTokens = \'{"access_token": "x"}\' }\n')
    file.chmod(0o600)
    config = load_config(file, environ={})
    assert config.sites[0].zoom == 1.25 and config.sites[0].local_storage["hassTokens"] == '{"access_token": "x"}'
