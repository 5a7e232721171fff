"""Refuse config files that hold secrets where other users can read them.

The token and per-site dashboard secrets (cookies, headers, passwords) live in the config file, so
that file must be as private as the secrets: readable by castd's user (and group), never by
everyone. Checked on the open file handle, so what is checked is what was read.
"""

from __future__ import annotations

import os
import re
import stat
from typing import Any
from urllib.parse import urlsplit

# keys whose non-empty values are secrets, wherever they appear (top level or inside [[sites]])
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|cookie|authorization|credential|api_?key|headers|local_?storage|basic_?auth)",
    re.I)


def _url_with_password(value: Any) -> bool:
    """A URL that carries a password (rtsp://user:password@camera/): a camera's URL may."""
    if not isinstance(value, str) or "://" not in value or "@" not in value:
        return False
    try:
        return bool(urlsplit(value).password)
    except ValueError:
        return False


def secret_keys(data: Any, where: str = "") -> list[str]:
    """Dotted names of the keys in a parsed TOML document that hold secret values."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{where}.{key}" if where else str(key)
            if (_SECRET_KEY.search(str(key)) and value not in ("", None, [], {})) or _url_with_password(value):
                found.append(name)
            else:
                found += secret_keys(value, name)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += secret_keys(value, f"{where}[{i}]")
    return found


def exposure_problem(path: os.PathLike | str, fd: int, data: dict[str, Any]) -> str | None:
    """Why this config file may not be used as it is (secrets readable by others), or None."""
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & stat.S_IWOTH:
        return (f"config file {path}: writable by every user (mode {mode:04o}); anyone could change what castd "
                f"opens. Run: chmod o-w {path}")
    keys = secret_keys(data)
    if keys and mode & stat.S_IROTH:
        return (f"config file {path}: holds secrets ({', '.join(keys[:3])}) but is readable by every user "
                f"(mode {mode:04o}). Run: chmod 600 {path} (or chmod 640 with the castd group)")
    return None
