"""Is warm standby implemented, and which config values turn it on and off?

The bench only relies on a config key `standby` in castd.config.Config. Its type decides the
values: a bool is true/false; a string or Literal is matched against common spellings, each
checked by castd's own config validation; `--standby-on/--standby-off` override the choice.
"""

from __future__ import annotations

import typing

import msgspec

OFF_SPELLINGS = ("off", "false", "no", "never", "disabled", "none", "0")
ON_SPELLINGS = ("after-use", "after_use", "on", "true", "yes", "always", "boot", "1")


def field():
    from castd.config import Config

    for info in msgspec.structs.fields(Config):
        if info.name == "standby":
            return info
    return None


def _valid(value) -> bool:
    from castd.config import Config

    try:
        msgspec.convert({"standby": value}, Config, strict=False)
    except (msgspec.ValidationError, ValueError):
        return False
    return True


def values(on: str | None = None, off: str | None = None) -> tuple[str, str] | None:
    """(on, off) as CASTD_STANDBY environment strings, or None when castd has no standby key."""
    info = field()
    if info is None:
        return None
    if info.type is bool:
        return on or "true", off or "false"
    spelled = typing.get_args(info.type)  # castd's own Literal, where it has one: no guessing
    if spelled and "off" in spelled:
        return on or next(v for v in spelled if v != "off" and v != "boot"), off or "off"
    if on is None:
        on = next((v for v in ON_SPELLINGS if _valid(v)), None)
    if off is None:
        off = next((v for v in OFF_SPELLINGS if _valid(v)), None)
    if on is None or off is None:
        raise ValueError(f"config key standby ({info.type}): cannot tell its on/off values; "
                         "pass --standby-on and --standby-off")
    return on, off
