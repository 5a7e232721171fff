"""GET /openapi.json: the API described from the same msgspec types that validate and build it.

Request schemas are the types the endpoints decode with; response schemas are the types they
encode. Nothing here restates a field, so the document cannot drift from the real shapes.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from castd import __version__
from castd.api.schemas import (DashboardsResponse, DevicesResponse, ErrorResponse, HealthResponse, PublicStatus,
                               StartRequest, StartResponse, StatusResponse, StepResponse, StopRequest, StopResponse)
from castd.config import Config

REF = "#/components/schemas/{name}"
TYPES = [StartRequest, StartResponse, StopRequest, StopResponse, StepResponse, StatusResponse, PublicStatus,
         HealthResponse, DevicesResponse, DashboardsResponse, ErrorResponse]
BODY_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain")  # JSON under any label


def _ref(kind: type) -> dict[str, str]:
    return {"$ref": REF.format(name=kind.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {400: "invalid input (the message says which field and why)", 401: "token missing or wrong",
               403: "refused: off the allowlist, or a cross-site/DNS-rebinding request",
               404: "no such stream (the session ended), or no dashboard/playlist of that name (the message "
                    "lists the names)",
               405: "method not allowed (GET on a control path needs castd to have a token)",
               409: "the supervisor refused it (e.g. /next with no playlist on screen)",
               413: "body too large", 415: "body is neither JSON nor a form",
               429: "too many starts or page switches; see Retry-After",
               503: "castd is not ready"}
    return {str(code): _json(_ref(ErrorResponse), reasons[code]) for code in codes}


def build(config: Config) -> dict[str, Any]:
    _, components = msgspec.json.schema_components(TYPES, ref_template=REF)
    security: list[dict[str, list]] = [{"bearer": []}, {"query": []}] if config.token else []
    auth_errors = (401,) if config.token else ()
    start_body = {"required": True, "content": {kind: {"schema": _ref(StartRequest)} for kind in BODY_TYPES}}
    stop_body = {"required": False, "content": {kind: {"schema": _ref(StopRequest)} for kind in BODY_TYPES}}
    start_query = [{"name": name, "in": "query", "required": False, "schema": schema}
                   for name, schema in components["StartRequest"]["properties"].items()]
    start_op: dict[str, Any] = {"summary": "Start casting a url, a dashboard or a playlist (same quality, mode "
                                           "and devices as the running session: a page switch in it)",
                                "security": security,
                                "responses": {"200": _json(_ref(StartResponse), "started or switched"),
                                              **_errors(400, *auth_errors, 403, 404, 405, 409, 413, 415, 429, 503)}}
    stop_op: dict[str, Any] = {"summary": "End the current session (idempotent)", "security": security,
                               "responses": {"200": _json(_ref(StopResponse), "stopped, or nothing was running"),
                                             **_errors(400, *auth_errors, 403, 405, 413, 415, 503)}}
    step_op: dict[str, Any] = {"security": security,
                               "responses": {"200": _json(_ref(StepResponse), "the item now on screen"),
                                             **_errors(400, *auth_errors, 403, 405, 409, 413, 415, 429, 503)}}
    get_note = " (GET: for one-URL senders, only when castd has a token, given as ?token=)"
    paths = {
        "/start": {"post": {**start_op, "requestBody": start_body},
                   "get": {**start_op, "summary": start_op["summary"] + get_note, "parameters": start_query}},
        "/stop": {"post": {**stop_op, "requestBody": stop_body},
                  "get": {**stop_op, "summary": stop_op["summary"] + get_note}},
        "/next": {"post": {**step_op, "summary": "The playlist on screen: next item", "requestBody": stop_body},
                  "get": {**step_op, "summary": "The playlist on screen: next item" + get_note}},
        "/previous": {"post": {**step_op, "summary": "The playlist on screen: previous item",
                               "requestBody": stop_body},
                      "get": {**step_op, "summary": "The playlist on screen: previous item" + get_note}},
        "/dashboards": {"get": {
            "summary": "The dashboards, playlists and schedules of the config (the names /start takes)",
            "security": security, "responses": {"200": _json(_ref(DashboardsResponse), "the names"),
                                                **_errors(*auth_errors, 403, 405)}}},
        "/status": {"get": {
            "summary": "The supervisor's last snapshot; without the token only state and health",
            "responses": {"200": _json({"anyOf": [_ref(StatusResponse), _ref(PublicStatus)]}, "current state"),
                          **_errors(403, 405)}}},
        "/devices": {"get": {
            "summary": "Cast devices found by mDNS plus the configured hosts, and what each is doing",
            "security": security,
            "parameters": [{"name": "timeout", "in": "query", "required": False,
                            "description": "seconds to listen for mDNS answers (default: mdns_timeout)",
                            "schema": {"type": "number", "minimum": 0.2, "maximum": 10}}],
            "responses": {"200": _json(_ref(DevicesResponse), "the devices"),
                          **_errors(400, *auth_errors, 403, 405, 503)}}},
        "/health": {"get": {
            "summary": "200 when castd is alive and producing, 503 with a reason otherwise",
            "responses": {"200": _json(_ref(HealthResponse), "healthy"),
                          "503": _json(_ref(HealthResponse), "unhealthy"), **_errors(405)}}},
        "/stream/{session}/{name}": {"get": {
            "summary": "The live HLS stream of the current session (playlists and segments)",
            "parameters": [
                {"name": "session", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"}},
                {"name": "name", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}\.(m3u8|ts|m4s|mp4)$"}},
                {"name": "_HLS_msn", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0},
                 "description": "blocking reload (stream_format hls-fast-parts, RFC 8216bis 6.2.5.2): the media "
                                "playlist is answered once this segment is listed; ignored by other formats"},
                {"name": "_HLS_part", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0},
                 "description": "with _HLS_msn: part 0 is listed with its segment, a later part with the next "
                                "segment (castd lists one partial segment per segment)"}],
            "responses": {"200": {"description": "a playlist or a segment", "content": {
                "application/vnd.apple.mpegurl": {}, "video/mp2t": {}, "video/iso.segment": {}, "video/mp4": {}}},
                "400": _json(_ref(ErrorResponse), "a blocking reload's _HLS_msn or _HLS_part is not a whole "
                             "number, _HLS_part comes without _HLS_msn, or it asks for more than two segments "
                             "past the last listed"),
                "503": _json(_ref(ErrorResponse), "a blocking reload's segment was not listed within three "
                             "target durations (3 s)"),
                **_errors(404, 405)}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        "/": {"get": {"summary": "The preview page: the picture being cast, the state, a stop button",
                      "responses": {"200": {"description": "an HTML page", "content": {"text/html": {}}}}}},
        "/snapshot.jpg": {"get": {
            "summary": "The latest picture of the current session (about one a second)", "security": security,
            "responses": {"200": {"description": "a JPEG", "content": {"image/jpeg": {}}},
                          **_errors(*auth_errors, 403, 404, 405)}}},
        "/demo": {"get": {"summary": "The embedded demo dashboard",
                          "responses": {"200": {"description": "an HTML page", "content": {"text/html": {}}}}}},
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "castd", "version": __version__,
                 "description": "Put a live web dashboard on a TV on demand. Every error is "
                                "{\"error\": \"...\", \"status\": N}."},
        "paths": paths,
        "components": {"schemas": components},
    }
    if config.token:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "query": {"type": "apiKey", "in": "query", "name": "token"},
        }
    return document


async def openapi_json(request: Request) -> Response:
    return Response(request.app.state.openapi, media_type="application/json")
