"""Webhook security against the real daemon: the token, the safe default, the allowlist, limits, the
OpenAPI document, secret files, and a table of hostile requests that must each change nothing."""

import json
import os
import secrets
import subprocess
import sys

import httpx
import jsonschema
import pytest
from helpers import Daemon, PageHandler, free_port, raw_request, wait_for

from castd.api.auth import listen_refusal
from castd.config import Config, ConfigError, load_config
from castd.secretfile import secret_keys

TOKEN = secrets.token_urlsafe(24)  # 32 characters, new every run: it must never show up in a log
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"content-type": "application/json"}


def same_length_wrong(token: str) -> list[str]:
    """Tokens of the right length that differ in one place: first, middle, last character, and case."""
    def flip(c):
        return "A" if c != "A" else "B"
    mid = len(token) // 2
    return [flip(token[0]) + token[1:], token[:mid] + flip(token[mid]) + token[mid + 1:],
            token[:-1] + flip(token[-1]), token.swapcase() if token.swapcase() != token else flip(token[0]) + token[1:]]


def assert_json_error(response_or_tuple, status):
    if isinstance(response_or_tuple, tuple):
        code, headers, body = response_or_tuple
    else:
        code, headers, body = response_or_tuple.status_code, response_or_tuple.headers, response_or_tuple.content
    assert code == status, (code, body[:300])
    assert headers["content-type"].startswith("application/json"), headers
    data = json.loads(body)
    assert data["status"] == status and isinstance(data["error"], str) and data["error"]
    return data["error"]


@pytest.fixture(scope="module")
def secure(tmp_path_factory, pages):
    """castd with a token and an allowlist of two local page prefixes."""
    allow = f"{pages.url('/color/')},{pages.url('/nav/')}"
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("secure") / "run", token=TOKEN,
               env_extra={"CASTD_ALLOWLIST": allow}).start()
    yield d
    d.finish()


@pytest.fixture(scope="module")
def open_castd(tmp_path_factory, pages):
    """castd without a token (loopback), a small /start rate limit, and an allowlist."""
    d = Daemon(runtime_dir=tmp_path_factory.mktemp("open") / "run",
               env_extra={"CASTD_ALLOWLIST": pages.url("/color/"), "CASTD_RATE_LIMIT_BURST": "3",
                          "CASTD_RATE_LIMIT_PER_MINUTE": "60"}).start()
    yield d
    d.finish()


@pytest.fixture(scope="module")
def openapi(secure):
    response = secure.get("/openapi.json", headers={})
    assert response.status_code == 200
    return response.json()


def validator(doc, name):
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema)


# ---- the token ------------------------------------------------------------------------------
def test_token_accepted_as_header_body_or_query(secure):
    off_list = "http://192.0.2.1/not-allowed"  # documentation address; refused before anything opens it
    forms = [
        ("header", dict(headers=AUTH, json={"url": off_list})),
        ("lower-case scheme", dict(headers={"Authorization": f"bearer {TOKEN}"}, json={"url": off_list})),
        ("body", dict(headers={}, json={"url": off_list, "token": TOKEN})),
        ("query", dict(headers={}, params={"token": TOKEN}, json={"url": off_list})),
    ]
    for name, kw in forms:
        # 403 (off the allowlist) proves the token was accepted: without it the answer is 401
        assert secure.post("/start", **kw).status_code == 403, name
    assert secure.post("/stop", headers={}, json={"token": TOKEN}).status_code == 200
    assert secure.post("/stop", headers={}, params={"token": TOKEN}).status_code == 200
    assert secure.post("/stop", headers=AUTH).status_code == 200
    full = secure.get("/status", headers={}, params={"token": TOKEN}).json()
    assert "session" in full and "supervisor_pid" in full


def test_wrong_tokens_of_the_same_length_fail_alike(secure):
    before = _snapshot(secure)
    messages = set()
    for wrong in same_length_wrong(TOKEN):
        assert len(wrong) == len(TOKEN) and wrong != TOKEN
        for kw in (dict(headers={"Authorization": f"Bearer {wrong}"}, json={"url": "http://192.0.2.1/"}),
                   dict(headers={}, json={"url": "http://192.0.2.1/", "token": wrong}),
                   dict(headers={}, params={"token": wrong}, json={"url": "http://192.0.2.1/"})):
            response = secure.post("/start", **kw)
            messages.add(assert_json_error(response, 401))
            assert response.headers["www-authenticate"].startswith("Bearer")
            messages.add(assert_json_error(secure.post("/stop", **kw), 401))
    for kw in (dict(headers={}), dict(headers={"Authorization": f"Basic {TOKEN}"}),
               dict(headers={"Authorization": f"Bearer {TOKEN}x"}), dict(headers={}, params={"token": ""}),
               dict(headers={}, params=[("token", "wrong"), ("token", TOKEN)])):
        messages.add(assert_json_error(secure.post("/stop", **kw), 401))
    assert len(messages) == 1, messages  # one message whatever was wrong: it names no part
    assert "token" in messages.pop()
    assert _snapshot(secure) == before


def test_status_without_token_shows_only_state_and_health(secure):
    public = secure.get("/status", headers={}).json()
    assert public == {"state": "idle", "ok": True, "auth_required": True}
    wrong = secure.get("/status", headers={"Authorization": "Bearer " + "x" * len(TOKEN)}).json()
    assert wrong == public


def test_health_stream_and_openapi_stay_open(secure):
    health = secure.get("/health", headers={})
    assert health.status_code == 200 and set(health.json()) <= {"ok", "state", "note"}
    assert secure.get("/openapi.json", headers={}).status_code == 200
    assert_json_error(secure.get("/stream/" + "A" * 22 + "/index.m3u8", headers={}), 404)  # 404, not 401
    assert_json_error(secure.get("/devices", headers={}), 401)  # protected from birth (default deny)
    assert_json_error(secure.get("/no-such-endpoint", headers={}), 401)  # unknown paths need the token too
    assert_json_error(secure.get("/no-such-endpoint"), 404)


# ---- safe default -----------------------------------------------------------------------------
def test_non_loopback_without_token_refuses_to_start(tmp_path):
    env = {**os.environ, "CASTD_RUNTIME_DIR": str(tmp_path / "run")}
    env.pop("CASTD_TOKEN", None)
    result = subprocess.run([sys.executable, "-m", "castd", "serve", "--host", "0.0.0.0", "--port",
                             str(free_port())], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "without a token" in lines[0] and "--insecure" in lines[0], result.stderr
    assert listen_refusal(Config(host="0.0.0.0", token="t" * 16)) is None
    assert listen_refusal(Config(host="::1")) is None and listen_refusal(Config(host="localhost")) is None
    assert listen_refusal(Config(host="192.168.1.20"))


def test_insecure_starts_beyond_loopback_with_a_warning(tmp_path):
    d = Daemon(runtime_dir=tmp_path / "run", args=["--host", "0.0.0.0", "--insecure"])
    try:
        d.start()  # reached over 127.0.0.1; nothing leaves the machine
        assert d.get("/health").status_code == 200
        warning = [line for line in d.log().splitlines() if "WITHOUT a token" in line]
        assert warning and "WARNING" in warning[0], d.log()
    finally:
        d.stop()
        d.kill_leftovers()


# ---- browsers that were tricked into sending requests ------------------------------------------
def test_cross_site_and_dns_rebinding_requests_are_refused(open_castd):
    evil = {"Origin": "http://evil.example"}
    assert_json_error(open_castd.post("/stop", headers=evil), 403)
    assert_json_error(open_castd.post("/stop", headers={"Origin": "null"}), 403)
    assert_json_error(open_castd.post("/stop", headers={"Sec-Fetch-Site": "cross-site"}), 403)
    same = {"Origin": f"http://127.0.0.1:{open_castd.port}"}
    assert open_castd.post("/stop", headers=same).status_code == 200  # castd's own pages may post
    rebound = {"Host": f"evil.example:{open_castd.port}"}
    assert "rebinding" in assert_json_error(open_castd.get("/status", headers=rebound), 403)
    assert_json_error(open_castd.post("/stop", headers=rebound), 403)
    assert open_castd.get("/health", headers=rebound).status_code == 200  # open endpoints stay open
    tunnelled = {"X-Forwarded-For": "203.0.113.9"}  # a tunnel on this machine makes the internet look local
    assert "proxy or tunnel" in assert_json_error(open_castd.post("/stop", headers=tunnelled), 403)
    assert open_castd.get("/status", headers={"Host": f"localhost:{open_castd.port}"}).json()["state"] == "idle"
    assert open_castd.status()["state"] == "idle"


# ---- limits -------------------------------------------------------------------------------------
def test_start_rate_limit_answers_429_with_retry_after(open_castd):
    off_list = {"url": "http://192.0.2.1/"}
    # burst 3, then one a second: every /start counts (refused ones too); the first past the burst is a 429
    codes, limited = [], None
    for _ in range(20):
        response = open_castd.post("/start", json=off_list)
        codes.append(response.status_code)
        if response.status_code == 429:
            limited = response
            break
    assert codes[:3] == [403, 403, 403] and limited is not None, codes
    assert "too many starts" in assert_json_error(limited, 429)
    retry = int(limited.headers["retry-after"])
    assert 1 <= retry <= 2
    assert open_castd.status()["state"] == "idle"
    wait_for(lambda: open_castd.post("/start", json=off_list).status_code == 403, timeout=retry + 10,
             interval=0.5, message="a token back in the bucket")


def test_body_and_depth_limits(open_castd):
    assert_json_error(open_castd.post("/stop", content=b'{"token": "' + b"a" * 70000 + b'"}', headers=JSON), 413)
    nested = b'{"url": "http://192.0.2.1/", "quality": ' + b"[" * 9 + b"]" * 9 + b"}"
    assert "nested" in assert_json_error(open_castd.post("/stop", content=b"[" * 100 + b"]" * 100, headers=JSON),
                                         400)
    assert "nested" in assert_json_error(open_castd.post("/stop", content=nested, headers=JSON), 400)


# ---- secrets in config files ----------------------------------------------------------------------
def test_world_readable_config_with_token_is_refused(tmp_path):
    file = tmp_path / "castd.toml"
    file.write_text(f'token = "{TOKEN}"\n')
    file.chmod(0o644)
    result = subprocess.run([sys.executable, "-m", "castd", "serve", "--config", str(file)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "readable by every user" in lines[0] and "chmod 600" in lines[0], result.stderr
    assert TOKEN not in result.stderr
    file.chmod(0o600)
    assert load_config(file, environ={}).token == TOKEN
    file.chmod(0o640)
    assert load_config(file, environ={}).token == TOKEN
    file.write_text('port = 9000\n')
    file.chmod(0o644)
    assert load_config(file, environ={}).port == 9000  # nothing secret: may be world-readable
    file.chmod(0o646)
    with pytest.raises(ConfigError, match="writable by every user"):
        load_config(file, environ={})


def test_site_secrets_are_found_wherever_they_sit(tmp_path):
    document = {"port": 1, "sites": [{"prefix": "https://ha.local/", "zoom": 1.5},
                                     {"prefix": "https://g.local/", "cookies": {"grafana_session": "x"},
                                      "headers": {"X-Api": "y"}, "local_storage": {"hassTokens": "z"}}]}
    assert secret_keys(document) == ["sites[1].cookies", "sites[1].headers", "sites[1].local_storage"]
    assert secret_keys({"sites": [{"prefix": "https://ha.local/", "zoom": 1.5}], "token": ""}) == []
    file = tmp_path / "castd.toml"
    file.write_text('[[sites]]\nprefix = "https://g.local/"\nbasic_auth = "me:pw"\n')
    file.chmod(0o604)
    with pytest.raises(ConfigError, match=r"holds secrets \(sites\[0\].basic_auth\)"):
        load_config(file, environ={})


def test_allowlist_from_environment_is_a_list(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    config = load_config(empty, environ={"CASTD_ALLOWLIST": "https://a.example/, https://b.example/x/"})
    assert config.allowlist == ["https://a.example/", "https://b.example/x/"]


# ---- the OpenAPI document -------------------------------------------------------------------------
def test_openapi_matches_real_responses(secure, open_castd, openapi):
    assert openapi["openapi"].startswith("3.1")
    assert {"/start", "/stop", "/status", "/health", "/devices", "/stream/{session}/{name}"} <= set(openapi["paths"])
    jsonschema.Draft202012Validator.check_schema({"components": openapi["components"]})
    validator(openapi, "StatusResponse").validate(secure.get("/status").json())
    validator(openapi, "PublicStatus").validate(secure.get("/status", headers={}).json())
    validator(openapi, "HealthResponse").validate(secure.get("/health").json())
    validator(openapi, "StopResponse").validate(secure.post("/stop").json())
    for response in (secure.post("/stop", headers={}), secure.post("/start", json={"url": "ftp://x/"}),
                     secure.get("/nope"), secure.get("/start")):
        validator(openapi, "ErrorResponse").validate(response.json())
    start = openapi["components"]["schemas"]["StartRequest"]
    assert not start.get("required") and start["additionalProperties"] is False  # one of url/dashboard/playlist
    assert set(start["properties"]) == {"url", "dashboard", "playlist", "camera", "overlay", "overlay_size", "then",
                                        "quality", "duration", "token", "zoom", "reload_seconds", "ready_selector",
                                        "device", "mode", "takeover", "sticky", "wake", "volume", "mute",
                                        "silent_start", "restore_volume"}
    validator(openapi, "DashboardsResponse").validate(secure.get("/dashboards").json())
    assert openapi["components"]["schemas"]["StatusResponse"]["additionalProperties"] is False
    validator(openapi, "StatusResponse").validate(open_castd.get("/status").json())
    bad = {**secure.get("/status").json(), "undocumented": 1}
    with pytest.raises(jsonschema.ValidationError):
        validator(openapi, "StatusResponse").validate(bad)


# ---- hostile requests -------------------------------------------------------------------------------
SESSION_LIKE = "A" * 22
URL_HOST = "{HOSTPORT}"  # the page server's host:port, filled in at run time


def _body(**fields) -> bytes:
    return json.dumps(fields).encode()


def _start(url, **more) -> bytes:
    return _body(url=url, **more)


ALLOWED = "http://{HOSTPORT}/color/hostile"  # on the allowlist: never requested by a refused start
HOSTILE = [
    # id, method, path, headers (AUTH unless given), body, status, raw
    # -- authentication
    ("no token, valid start", "POST", "/start", {}, _start(ALLOWED), 401),
    ("wrong bearer, same length", "POST", "/start", {"Authorization": "Bearer " + "x" * 32}, _start(ALLOWED), 401),
    ("wrong body token", "POST", "/start", {}, _start(ALLOWED, token="y" * 32), 401),
    ("wrong query token", "POST", "/start?token=" + "z" * 32, {}, _start(ALLOWED), 401),
    ("basic auth", "POST", "/stop", {"Authorization": "Basic dXNlcjpwYXNz"}, b"", 401),
    ("token in a non-JSON body", "POST", "/stop", {"content-type": "text/plain"}, b"token=x", 401),
    ("unknown path without token", "GET", "/admin", {}, b"", 401),
    # -- methods
    ("GET /start, no fields", "GET", "/start", None, b"", 400),
    ("GET /start, no token", "GET", "/start?url=http://{HOSTPORT}/color/hostile", {}, b"", 401),
    ("GET /start, wrong query token", "GET", "/start?url=http://{HOSTPORT}/color/hostile&token=" + "q" * 32, {},
     b"", 401),
    ("GET /start from another site", "GET", "/start?url=http://{HOSTPORT}/color/hostile",
     {**AUTH, "Sec-Fetch-Site": "cross-site"}, b"", 403),
    ("POST /next, no token", "POST", "/next", {}, b"", 401),
    ("PUT /start", "PUT", "/start", None, _start(ALLOWED), 405),
    ("PATCH /start", "PATCH", "/start", None, _start(ALLOWED), 405),
    ("DELETE /stop", "DELETE", "/stop", None, b"", 405),
    ("OPTIONS /start (no CORS preflight)", "OPTIONS", "/start", None, b"", 405),
    ("POST /status", "POST", "/status", None, b"", 405),
    ("POST /health", "POST", "/health", None, b"", 405),
    ("unknown path with token", "GET", "/admin", None, b"", 404),
    # -- content types
    ("text/plain, not JSON", "POST", "/start", {**AUTH, "content-type": "text/plain"}, b"url=" + ALLOWED.encode(),
     400),
    ("form, bad url", "POST", "/start", {**AUTH, "content-type": "application/x-www-form-urlencoded"}, b"url=x", 400),
    ("form, wrong token", "POST", "/start", {"content-type": "application/x-www-form-urlencoded"},
     b"url=http://{HOSTPORT}/color/hostile&token=" + b"f" * 32, 401),
    ("form, unknown field", "POST", "/start", {**AUTH, "content-type": "application/x-www-form-urlencoded"},
     b"url=http://{HOSTPORT}/color/hostile&colour=red", 400),
    ("multipart", "POST", "/start", {**AUTH, "content-type": "multipart/form-data; boundary=x"},
     b"--x\r\n\r\nurl\r\n--x--", 415),
    ("xml", "POST", "/start", {**AUTH, "content-type": "application/xml"}, b"<url>x</url>", 415),
    # -- malformed JSON
    ("truncated JSON", "POST", "/start", None, b'{"url": ', 400),
    ("unquoted keys", "POST", "/start", None, b"{url: 1}", 400),
    ("trailing garbage", "POST", "/start", None, _start(ALLOWED) + b" x", 400),
    ("invalid UTF-8 in a string", "POST", "/start", None, b'{"url": "http://\xff\xfe/"}', 400),
    ("invalid UTF-8, bad token form", "POST", "/start", {}, b'{"token": "\xed\xa0\x80"}', 401),
    ("byte order mark", "POST", "/start", None, b"\xef\xbb\xbf" + _start(ALLOWED), 400),
    ("NaN", "POST", "/start", None, b'{"url": "http://x/", "duration": NaN}', 400),
    ("JSON null", "POST", "/start", None, b"null", 400),
    ("JSON string", "POST", "/start", None, b'"http://x/"', 400),
    ("duplicate key, last one bad", "POST", "/start", None,
     b'{"url": "http://{HOSTPORT}/color/hostile", "url": "file:///etc/passwd"}', 400),
    # -- huge and deep
    ("body over 64 KiB", "POST", "/start", None, _start("http://x/" + "a" * 70000), 413),
    ("chunked body over 64 KiB", "POST", "/start", None, "CHUNKED", 413),
    ("deep arrays in a field", "POST", "/start", None, b'{"url": ' + b"[" * 10000 + b"]" * 10000 + b"}", 400),
    ("deep top-level arrays", "POST", "/start", None, b"[" * 30000 + b"]" * 30000, 400),
    ("deep objects", "POST", "/start", None, b'{"a":' * 9 + b"1" + b"}" * 9, 400),
    ("deep arrays, no token", "POST", "/start", {}, b"[" * 30000 + b"]" * 30000, 401),
    # -- unicode, nulls, wrong types, huge numbers
    ("NUL in url", "POST", "/start", None, _start("http://{HOSTPORT}/color/\u0000"), 400),
    ("lone surrogate in url", "POST", "/start", None, b'{"url": "http://\\ud800.example/"}', 400),
    ("zero-width space in host", "POST", "/start", None, _start("http://exa\u200bmple.com/"), 400),
    ("right-to-left override in host", "POST", "/start", None, _start("http://moc.\u202eexample/"), 400),
    ("url is a number", "POST", "/start", None, b'{"url": 5}', 400),
    ("url is an array", "POST", "/start", None, b'{"url": ["http://x/"]}', 400),
    ("url is null", "POST", "/start", None, b'{"url": null}', 400),
    ("url is empty", "POST", "/start", None, _start(""), 400),
    ("url too long", "POST", "/start", None, _start("http://{HOSTPORT}/color/" + "a" * 4100), 400),
    ("quality is an object", "POST", "/start", None, b'{"url": "http://x/", "quality": {"a": 1}}', 400),
    ("quality unknown", "POST", "/start", None, _start(ALLOWED, quality="8k"), 400),
    ("duration 1e400", "POST", "/start", None, b'{"url": "http://x/", "duration": 1e400}', 400),
    ("duration 10**400", "POST", "/start", None, b'{"url": "http://x/", "duration": 1' + b"0" * 400 + b"}", 400),
    ("duration negative", "POST", "/start", None, _start(ALLOWED, duration=-1), 400),
    ("duration boolean", "POST", "/start", None, _start(ALLOWED, duration=True), 400),
    ("duration over max_duration", "POST", "/start", None, _start(ALLOWED, duration=10 ** 9), 400),
    ("unknown field", "POST", "/start", None, _start(ALLOWED, colour="red"), 400),
    ("stop body is an array", "POST", "/stop", None, b"[]", 400),
    # -- schemes
    *[(f"scheme {u.split(':')[0] or 'relative'}", "POST", "/start", None, _start(u), 400) for u in (
        "file:///etc/passwd", "data:text/html,<script>alert(1)</script>", "javascript:alert(1)",
        "JavaScript:alert(1)", "chrome://settings", "about:blank", "view-source:http://{HOSTPORT}/color/x",
        "ftp://{HOSTPORT}/", "blob:http://{HOSTPORT}/1", "filesystem:http://{HOSTPORT}/temporary/x",
        "chrome-extension://abc/x.html", "ws://{HOSTPORT}/", "//{HOSTPORT}/color/x")],
    ("leading space before scheme", "POST", "/start", None, _start(" javascript:alert(1)"), 400),
    ("tab inside scheme", "POST", "/start", None, _start("java\tscript:alert(1)"), 400),
    # -- IDN and host name tricks
    ("credentials before the host", "POST", "/start", None, _start("http://{HOSTPORT}@evil.example/"), 400),
    ("fragment hides the host", "POST", "/start", None, _start("http://evil.example#@{HOSTPORT}/color/x"), 403),
    ("decimal IPv4", "POST", "/start", None, _start("http://2130706433:{PORT}/color/x"), 400),
    ("hex IPv4", "POST", "/start", None, _start("http://0x7f.0.0.1:{PORT}/color/x"), 400),
    ("short IPv4", "POST", "/start", None, _start("http://127.1:{PORT}/color/x"), 400),
    ("full-width digits", "POST", "/start", None, _start("http://１２７.０.０.１:{PORT}/color/x"), 400),
    ("Cyrillic look-alike host", "POST", "/start", None, _start("http://\u0435xample.com/"), 403),
    ("broken punycode", "POST", "/start", None, _start("http://xn--zz.example/"), 400),
    ("backslash host trick", "POST", "/start", None, _start("http://{HOSTPORT}\\@evil.example/"), 400),
    ("port with a host after it", "POST", "/start", None, _start("http://{HOSTPORT}.evil.example/"), 400),
    ("dot segments out of the prefix", "POST", "/start", None, _start("http://{HOSTPORT}/color/../secret"), 403),
    ("encoded dot segments", "POST", "/start", None, _start("http://{HOSTPORT}/color/%2e%2e/secret"), 403),
    ("IPv6 loopback is another host", "POST", "/start", None, _start("http://[::1]:{PORT}/color/x"), 403),
    ("https instead of http", "POST", "/start", None, _start("https://{HOSTPORT}/color/x"), 403),
    ("localhost is another host", "POST", "/start", None, _start("http://localhost:{PORT}/color/x"), 403),
    # -- header injection in the URL
    ("CRLF in url", "POST", "/start", None, _start("http://{HOSTPORT}/color/x\r\nX-Injected: 1"), 400),
    ("encoded CRLF off the list", "POST", "/start", None, _start("http://evil.example/%0d%0aSet-Cookie:%20a=b"), 403),
    # -- browser-forged
    ("cross-site origin", "POST", "/stop", {**AUTH, "Origin": "http://evil.example"}, b"", 403),
    ("cross-site form post", "POST", "/start", {**AUTH, "Origin": "http://evil.example",
                                               "content-type": "application/x-www-form-urlencoded"},
     b"url=http://{HOSTPORT}/color/hostile", 403),
    ("form post from a page, no token", "POST", "/start", {"Origin": "null",
                                                          "content-type": "application/x-www-form-urlencoded"},
     b"url=http://{HOSTPORT}/color/hostile", 403),
    ("sec-fetch-site cross-site", "POST", "/start", {**AUTH, "Sec-Fetch-Site": "cross-site"}, _start(ALLOWED), 403),
]
RAW_HOSTILE = [
    # id, request line target, status (all GET, sent as exact bytes)
    ("dot segments", "/stream/../../etc/passwd", 404),
    ("encoded slashes", f"/stream/{SESSION_LIKE}/..%2f..%2fetc%2fpasswd", 404),
    ("encoded dots", "/stream/%2e%2e/%2e%2e%2fetc%2fpasswd", 404),
    ("no such session", f"/stream/{SESSION_LIKE}/index.m3u8", 404),
    ("absolute path in name", f"/stream/{SESSION_LIKE}/%2fetc%2fpasswd", 404),
    ("backslashes", f"/stream/{SESSION_LIKE}/..%5c..%5cwin.ini", 404),
    ("empty session", "/stream//etc/passwd", 404),
    ("NUL in name", f"/stream/{SESSION_LIKE}/index.m3u8%00.ts", 404),
    ("double dots", f"/stream/{SESSION_LIKE}/....//....//etc/passwd", 404),
    ("absolute-form target", "http://127.0.0.1/stream/../../etc/passwd", 401),  # not a /stream/ path: needs the token
    ("session folder name", f"/stream/{SESSION_LIKE}.logs/chromedriver.log", 404),
]
assert len(HOSTILE) + len(RAW_HOSTILE) >= 40


def _fill(value, pages, secure):
    host_port = pages.base.removeprefix("http://")
    subst = {"{HOSTPORT}": host_port, "{PORT}": host_port.rsplit(":", 1)[1]}
    if isinstance(value, bytes):
        for k, v in subst.items():
            value = value.replace(k.encode(), v.encode())
        return value
    for k, v in subst.items():
        value = value.replace(k, v)
    return value


def _snapshot(daemon):
    status = daemon.get("/status", headers=AUTH).json()
    return {k: status[k] for k in ("state", "session", "url", "restarts", "supervisor_pid", "supervisor_restarts",
                                   "encoder_pid")}


def _page_hits():
    return {path: n for path, n in PageHandler.hits.items() if "hostile" in path or "secret" in path}


@pytest.mark.parametrize("name, method, path, headers, body, status", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_request_changes_nothing(secure, pages, openapi, name, method, path, headers, body, status):
    before, hits = _snapshot(secure), _page_hits()
    headers = {**JSON, **AUTH} if headers is None else {**JSON, **headers}
    if body == "CHUNKED":
        content = (b"x" * 8192 for _ in range(10))  # no Content-Length: the limit applies while reading
    else:
        content = _fill(body, pages, secure)
    path = _fill(path, pages, secure)
    response = httpx.request(method, secure.base + path, headers=headers, content=content, timeout=10)
    assert_json_error(response, status)
    declared = openapi["paths"].get(path.split("?")[0], {}).get(method.lower())
    if declared:
        assert str(status) in declared["responses"], f"{status} is not in the OpenAPI document for {method} {path}"
    assert secure.process.poll() is None
    assert secure.get("/health", headers={}).status_code == 200
    assert _snapshot(secure) == before
    assert _page_hits() == hits


@pytest.mark.parametrize("name, target, status", RAW_HOSTILE, ids=[h[0] for h in RAW_HOSTILE])
def test_hostile_raw_path_changes_nothing(secure, name, target, status):
    before = _snapshot(secure)
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    assert_json_error(raw_request(secure.port, request), status)
    assert secure.process.poll() is None and _snapshot(secure) == before


@pytest.mark.parametrize("request_bytes", [
    b"GET /status HTTP/1.1\r\nHost: x\r\nX-A: a\rInjected: b\r\n\r\n",
    b"POST /start HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /start HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    b"GET /status HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 70000 + b"\r\n\r\n",
    b"\x00\x01\x02 garbage\r\n\r\n",
    b"POST /start HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
], ids=["bare CR in a header", "bad content-length", "two content-lengths", "huge header", "binary", "bad chunk"])
def test_malformed_http_changes_nothing(secure, request_bytes):
    """Broken HTTP is uvicorn's to refuse (plain-text 4xx, or a closed connection); a huge but well-formed
    header reaches castd as an ordinary unauthenticated request. Never a 5xx, never a change."""
    before = _snapshot(secure)
    code, _, body = raw_request(secure.port, request_bytes, timeout=5)
    assert code == 0 or code < 500, code
    if code == 200:
        assert json.loads(body) == {"state": "idle", "ok": True, "auth_required": True}
    assert secure.process.poll() is None and _snapshot(secure) == before


def test_no_token_in_the_daemon_log(secure):
    # a refused start whose URL carries the token: logged (url masked), never shown
    secure.post("/start", json={"url": f"http://evil.example/?a={TOKEN}"})
    secure.post("/start", headers={}, params={"token": TOKEN}, json={"url": "http://evil.example/"})
    wait_for(lambda: secure.log().count("request refused method=POST path=/start") >= 2, timeout=5,
             message="the refusals logged")
    log = secure.log()
    assert "a=***" in log
    assert TOKEN not in log and TOKEN[:12] not in log
    assert "Traceback" not in log and "Exception in ASGI" not in log
