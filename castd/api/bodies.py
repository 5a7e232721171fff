"""Webhook bodies as real senders send them: JSON whatever the Content-Type says, forms, a query.

IFTTT's "Make a web request" offers three content types for the same body text: application/json,
application/x-www-form-urlencoded and text/plain; many senders label JSON text/plain or send no
type at all, and `curl -d '{...}'` labels it a form. So a body is read as JSON when it parses as a
JSON object, whatever its label; labelled a form, a body that starts with `{` is read as JSON (no
form does: its first field's name would be `{"url": ...`, which no request type has); a form
(`url=...&duration=60`, or `device` given more than once) carries the same fields; and a one-URL
sender's GET puts them in the query string. Anything else is a 415 that says what to send.
Every path ends in the same msgspec type, so a form is validated exactly like JSON.
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import parse_qs

import msgspec
from starlette.requests import Request

from castd.api.errors import ApiError, describe_validation, is_json, limits, read_body
from castd.api.jsonlimits import nesting_depth

T = TypeVar("T")
FORM = "application/x-www-form-urlencoded"
TEXT_TYPES = ("", "text/plain")  # labels a JSON body often arrives with
LIST_FIELDS = ("device",)  # form/query fields that may be given more than once
MAX_FIELDS = 32


def content_kind(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def form_fields(text: str, drop: tuple[str, ...] = ()) -> dict[str, str | list[str]]:
    """A form or query string as a dict; a field given twice is an error unless it may be a list."""
    try:
        parsed = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise ApiError(400, f"at most {MAX_FIELDS} form fields") from None
    fields: dict[str, str | list[str]] = {}
    for key, values in parsed.items():
        if key in drop:
            continue
        if key in LIST_FIELDS:
            fields[key] = values[0] if len(values) == 1 else values
        elif len(values) > 1:
            raise ApiError(400, f"{key}: given {len(values)} times")
        else:
            fields[key] = values[0]
    return fields


def convert_fields(fields: dict, kind: type[T]) -> T:
    """Form text into the request type: "60" becomes 60.0 where a number is wanted."""
    try:
        return msgspec.convert(fields, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise ApiError(400, describe_validation(str(exc))) from None


def decode_json(body: bytes, kind: type[T], max_depth: int) -> T:
    if nesting_depth(body, stop_at=max_depth) > max_depth:
        raise ApiError(400, f"JSON nested deeper than {max_depth} levels (max_json_depth in config)")
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(400, describe_validation(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "JSON nested too deeply") from None
    except UnicodeError:  # msgspec raises UnicodeDecodeError for bad UTF-8 inside a string
        raise ApiError(400, "body is not valid UTF-8") from None


async def decode_body(request: Request, kind: type[T], *, optional: bool = False) -> T:
    """The request's fields as `kind`: a JSON body (any label), a form body, or (GET) the query string."""
    if request.method == "GET":
        return convert_fields(form_fields(request.url.query, drop=("token",)), kind)
    body = await read_body(request)
    ctype = content_kind(request.headers.get("content-type", ""))
    if not body.strip():
        if optional:
            return kind()
        raise ApiError(400, "request body is empty; send a JSON object or a form")
    max_depth = limits(request)[1]
    if ctype == FORM and not body.lstrip().startswith(b"{"):
        try:
            text = body.decode("utf-8")
        except UnicodeError:
            raise ApiError(400, "body is not valid UTF-8") from None
        return convert_fields(form_fields(text, drop=("token",)), kind)
    if not is_json(ctype) and ctype not in TEXT_TYPES:  # labelled as something else: is it JSON anyway?
        try:
            if nesting_depth(body, stop_at=max_depth) <= max_depth:
                msgspec.json.decode(body)
        except (msgspec.DecodeError, UnicodeError):
            raise ApiError(415, f"send a JSON body (any Content-Type) or a form ({FORM}); "
                                f"this {ctype} body is neither") from None
    return decode_json(body, kind, max_depth)
