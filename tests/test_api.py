"""The HTTP API through uvicorn: every endpoint, and bad input that must change nothing."""

import json

import pytest


def assert_json_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status and isinstance(body["error"], str) and body["error"]
    return body["error"]


def test_idle_status_and_health(idle_daemon):
    status = idle_daemon.status()
    assert status["state"] == "idle"
    assert status["session"] is None and status["stream_url"] is None
    assert status["supervisor_pid"] > 0
    health = idle_daemon.get("/health")
    assert health.status_code == 200 and health.json()["ok"] is True


def test_stop_when_idle_is_harmless(idle_daemon):
    response = idle_daemon.post("/stop")
    assert response.status_code == 200
    assert response.json()["stopped"] is None
    assert idle_daemon.status()["state"] == "idle"


BAD_STARTS = [
    ("not json", b"{url:", {"content-type": "application/json"}, 400, "JSON"),
    ("empty", b"", {"content-type": "application/json"}, 400, "empty"),
    ("array", b"[]", {"content-type": "application/json"}, 400, "object"),
    ("url wrong type", b'{"url": 5}', {"content-type": "application/json"}, 400, "url"),
    ("unknown quality", b'{"url": "http://127.0.0.1/", "quality": "4k"}', {}, 400, "1080p, 720p, low-latency"),
    ("negative duration", b'{"url": "http://127.0.0.1/", "duration": -1}', {}, 400, "duration"),
    ("zero duration", b'{"url": "http://127.0.0.1/", "duration": 0}', {}, 400, "duration"),
    ("huge duration", b'{"url": "http://127.0.0.1/", "duration": 1e12}', {}, 400, "duration"),
    ("duration string", b'{"url": "http://127.0.0.1/", "duration": "ten"}', {}, 400, "duration"),
    ("file url", b'{"url": "file:///etc/passwd"}', {}, 400, "file"),
    ("javascript url", b'{"url": "javascript:alert(1)"}', {}, 400, "javascript"),
    ("no host", b'{"url": "http:///x"}', {}, 400, "host"),
    ("spaces", b'{"url": "http://a b/"}', {}, 400, "spaces"),
    ("unknown field", b'{"url": "http://127.0.0.1/", "colour": 1}', {}, 400, "colour"),
    ("form body, bad url", b"url=file:///etc/passwd", {"content-type": "application/x-www-form-urlencoded"}, 400,
     "file"),
    ("form field twice", b"url=http://127.0.0.1/&url=http://127.0.0.1/",
     {"content-type": "application/x-www-form-urlencoded"},
     400, "url: given 2 times"),
    ("form duration not a number", b"url=http://127.0.0.1/&duration=ten",
     {"content-type": "application/x-www-form-urlencoded"},
     400, "duration"),
    # curl -d '{...}' labels JSON a form: it is read as JSON (the URL is checked), not as a field named `{"url"...`
    ("JSON labelled a form", b'{"url": "file:///etc/passwd"}', {"content-type": "application/x-www-form-urlencoded"},
     400, "only http and https"),
    ("xml", b"<url>http://127.0.0.1/</url>", {"content-type": "application/xml"}, 415, "form"),
    ("text/plain, not JSON", b"url: http://127.0.0.1/", {"content-type": "text/plain"}, 400, "JSON"),
    ("no url, dashboard or playlist", b'{"quality": "720p"}', {}, 400, "exactly one of url, dashboard, playlist"),
    ("url and dashboard", b'{"url": "http://127.0.0.1/", "dashboard": "x"}', {}, 400, "exactly one"),
    ("unknown dashboard", b'{"dashboard": "nope"}', {}, 404, "no dashboard named 'nope'"),
    ("unknown playlist", b'{"playlist": "nope"}', {}, 404, "no playlist named 'nope'"),
    ("then unknown", b'{"url": "http://127.0.0.1/", "then": "later"}', {}, 400, "then"),
    ("device too long", json.dumps({"url": "http://127.0.0.1/", "device": "x" * 201}).encode(), {}, 400, "device"),
    ("nine devices", json.dumps({"url": "http://127.0.0.1/", "device": [f"tv{i}" for i in range(9)]}).encode(),
     {}, 400, "device"),
    ("device wrong type", b'{"url": "http://127.0.0.1/", "device": 5}', {}, 400, "device"),
    ("device bad port", b'{"url": "http://127.0.0.1/", "device": "127.0.0.1:70000"}', {}, 400, "port"),
    ("unknown mode", b'{"url": "http://127.0.0.1/", "mode": "mirror"}', {}, 400, "mode"),
    ("direct without device", b'{"url": "http://127.0.0.1/", "mode": "direct"}', {}, 400, "needs a device"),
    ("zoom too big", b'{"url": "http://127.0.0.1/", "zoom": 9}', {}, 400, "zoom"),
    ("zoom string", b'{"url": "http://127.0.0.1/", "zoom": "big"}', {}, 400, "zoom"),
    ("reload under 1 s", b'{"url": "http://127.0.0.1/", "reload_seconds": 0.5}', {}, 400, "reload_seconds"),
    ("negative reload", b'{"url": "http://127.0.0.1/", "reload_seconds": -1}', {}, 400, "reload_seconds"),
    ("empty ready selector", b'{"url": "http://127.0.0.1/", "ready_selector": ""}', {}, 400, "ready_selector"),
    ("control in selector", b'{"url": "http://127.0.0.1/", "ready_selector": "a\\u0001"}', {}, 400,
     "ready_selector"),
    ("cookies in a webhook", b'{"url": "http://127.0.0.1/", "cookies": {"a": "b"}}', {}, 400, "cookies"),
]


@pytest.mark.parametrize("name, body, headers, status, needle", BAD_STARTS, ids=[b[0] for b in BAD_STARTS])
def test_bad_start_is_a_clear_4xx_and_changes_nothing(idle_daemon, name, body, headers, status, needle):
    response = idle_daemon.post("/start", content=body, headers=headers)
    message = assert_json_error(response, status)
    assert needle.lower() in message.lower(), message
    assert idle_daemon.status()["state"] == "idle"


def test_body_over_64k_is_413(idle_daemon):
    body = json.dumps({"url": "http://127.0.0.1/" + "a" * 70000}).encode()
    assert_json_error(idle_daemon.post("/start", content=body, headers={"content-type": "application/json"}), 413)
    assert idle_daemon.status()["state"] == "idle"


def test_unknown_paths_and_methods_are_json(idle_daemon):
    assert_json_error(idle_daemon.get("/nope"), 404)
    assert_json_error(idle_daemon.get("/start"), 405)
    assert_json_error(idle_daemon.post("/status"), 405)
    assert_json_error(idle_daemon.get("/stream/AAAAAAAAAAAAAAAAAAAAAA/index.m3u8"), 404)
    assert_json_error(idle_daemon.get("/stream/AAAAAAAAAAAAAAAAAAAAAA/..%2f..%2fetc%2fpasswd"), 404)


def test_demo_page_is_served(idle_daemon):
    response = idle_daemon.get("/demo")
    assert response.status_code == 200 and "<canvas" in response.text
