"""Logging: loguru to stderr, one event per line with key=value context.

Under systemd (JOURNAL_STREAM matches stderr) each line starts with a `<N>` syslog priority so
`journalctl -p warning` shows just the problems; on a TTY lines are coloured.
Context goes in as keyword arguments: `log.info("session started", session=..., url=...)`.
Values are scrubbed of secrets (tokens, cookies, passwords, query strings that carry them).
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from typing import Any

from loguru import logger

log = logger

# syslog priorities as journald reads them from a `<N>` line prefix
PRIORITIES = {"TRACE": 7, "DEBUG": 7, "INFO": 6, "SUCCESS": 5, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}

_SECRET_KEYS = re.compile(r"(token|secret|password|passwd|cookie|authorization|auth|key|signature|sig)", re.I)
_SECRET_IN_TEXT = re.compile(
    r"(?i)((?:access_?token|token|secret|password|passwd|api_?key|auth|signature|sig)=)([^&\s\"']+)"
)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/@\s:]*:)[^/@\s]+@")  # rtsp://user:password@
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_secrets: tuple[str, ...] = ()  # longest first: "user:password" is masked whole, not as "user:***"


def register_secret(value: str) -> None:
    """Remember a secret value (the token, a cookie) so no log line ever shows it."""
    global _secrets
    if value and len(value) >= 4 and value not in _secrets:
        _secrets = tuple(sorted((*_secrets, value), key=len, reverse=True))


def scrub(value: Any) -> str:
    """A value made safe for a log line: known secrets and secret-looking query values masked."""
    text = str(value)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    text = _SECRET_IN_TEXT.sub(r"\1***", text)
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _BEARER.sub(r"\1***", text)


def _quote(value: Any) -> str:
    text = scrub(value)
    if not text or any(c in text for c in ' "=\n\t'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def _context(extra: dict[str, Any]) -> str:
    parts = []
    for key, value in extra.items():
        if value is None or key.startswith("_"):
            continue
        parts.append(f"{key}=***" if _SECRET_KEYS.search(key) and key not in SAFE_KEYS else f"{key}={_quote(value)}")
    return " ".join(parts)


# context keys that look secret-ish by name but are not
SAFE_KEYS = {"keyframes", "auth_required"}


def _journal_on_stderr() -> bool:
    stream = os.environ.get("JOURNAL_STREAM", "")
    if not stream or ":" not in stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    dev, _, ino = stream.partition(":")
    return f"{st.st_dev}:{st.st_ino}" == f"{dev}:{ino}"


def _formatter(journal: bool, colour: bool):
    """Build the whole line in Python and hand loguru a template with no user text in it.

    A traceback is scrubbed like the rest (exception messages quote URLs), and under journald
    each of its lines gets the priority prefix too, or journald would file them as info.
    """

    def fmt(record: dict) -> str:
        ctx = _context(record["extra"])
        line = scrub(record["message"]) + (" " + ctx if ctx else "")
        if record["exception"]:
            exc = record["exception"]
            line += "\n" + scrub("".join(traceback.format_exception(exc.type, exc.value, exc.traceback)).rstrip())
        if journal:
            prio = PRIORITIES.get(record["level"].name, 6)
            record["extra"]["_line"] = line.replace("\n", f"\n<{prio}>")
            return f"\\<{prio}>{{level}} {{name}}: {{extra[_line]}}\n"
        record["extra"]["_line"] = line
        if colour:
            return "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7} {name}: {extra[_line]}</level>\n"
        return "{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {name}: {extra[_line]}\n"

    return fmt


def setup_logging(level: str = "INFO", process: str | None = None) -> None:
    """Configure loguru once per process (front end, supervisor and encoder each call it)."""
    journal = _journal_on_stderr()
    colour = not journal and sys.stderr.isatty() and not os.environ.get("NO_COLOR")
    logger.remove()
    logger.add(sys.stderr, level=level.upper(), format=_formatter(journal, colour), colorize=colour,
               backtrace=False, diagnose=False, enqueue=False)
    if process:
        logger.configure(extra={"proc": process})


class _InterceptHandler:
    """Route the stdlib `logging` records of uvicorn and friends into loguru (one format, one place)."""

    @staticmethod
    def install(level: str) -> None:
        import logging

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                lvl: str | int
                try:
                    lvl = logger.level(record.levelname).name
                except ValueError:
                    lvl = record.levelno
                logger.opt(exception=record.exc_info).patch(
                    lambda r: r.update({"name": record.name})).log(lvl, record.getMessage())

        logging.basicConfig(handlers=[Handler()], level=level.upper(), force=True)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            std = logging.getLogger(name)
            std.handlers = []
            std.propagate = True


def intercept_stdlib(level: str = "INFO") -> None:
    _InterceptHandler.install(level)
