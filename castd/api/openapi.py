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
from castd.api.schemas import (ErrorResponse, HealthResponse, PublicStatus, StartRequest, StartResponse,
                               StatusResponse, StopRequest, StopResponse)
from castd.config import Config

REF = "#/components/schemas/{name}"
TYPES = [StartRequest, StartResponse, StopRequest, StopResponse, StatusResponse, PublicStatus, HealthResponse,
         ErrorResponse]


def _ref(kind: type) -> dict[str, str]:
    return {"$ref": REF.format(name=kind.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {400: "invalid input (the message says which field and why)", 401: "token missing or wrong",
               403: "refused: off the allowlist, or a cross-site/DNS-rebinding request",
               404: "no such stream (the session ended)", 405: "method not allowed",
               409: "the supervisor refused the start",
               413: "body too large", 415: "body is not JSON", 429: "too many starts; see Retry-After",
               503: "castd is not ready"}
    return {str(code): _json(_ref(ErrorResponse), reasons[code]) for code in codes}


def build(config: Config) -> dict[str, Any]:
    _, components = msgspec.json.schema_components(TYPES, ref_template=REF)
    security: list[dict[str, list]] = [{"bearer": []}, {"query": []}] if config.token else []
    auth_errors = (401,) if config.token else ()
    start_body = {"required": True, "content": {"application/json": {"schema": _ref(StartRequest)}}}
    stop_body = {"required": False, "content": {"application/json": {"schema": _ref(StopRequest)}}}
    paths = {
        "/start": {"post": {
            "summary": "Start casting a page (a start with the same quality switches the page in place)",
            "security": security, "requestBody": start_body,
            "responses": {"200": _json(_ref(StartResponse), "started or switched"),
                          **_errors(400, *auth_errors, 403, 405, 409, 413, 415, 429, 503)}}},
        "/stop": {"post": {
            "summary": "End the current session (idempotent)", "security": security, "requestBody": stop_body,
            "responses": {"200": _json(_ref(StopResponse), "stopped, or nothing was running"),
                          **_errors(400, *auth_errors, 403, 405, 413, 415, 503)}}},
        "/status": {"get": {
            "summary": "The supervisor's last snapshot; without the token only state and health",
            "responses": {"200": _json({"anyOf": [_ref(StatusResponse), _ref(PublicStatus)]}, "current state"),
                          **_errors(403, 405)}}},
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
                 "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}\.(m3u8|ts|m4s|mp4)$"}}],
            "responses": {"200": {"description": "a playlist or a segment", "content": {
                "application/vnd.apple.mpegurl": {}, "video/mp2t": {}, "video/iso.segment": {}, "video/mp4": {}}},
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
