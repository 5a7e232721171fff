"""How a session shares the TV with the household: the keys, one definition for every layer.

The same seven keys are read at each layer, and the nearest one that sets a key wins:
the start request (or MQTT command) > the dashboard, playlist or schedule entry > the config's top level.
Unset (None) means "ask the layer below"; the config's defaults are today's behaviour: take the TV
whatever plays (`takeover = "always"`), never come back by itself (`sticky = false`), let the LAUNCH
wake a CEC TV (`wake = true`), and leave the volume alone (`volume`, `mute` unset).

castd/cast/takeover.py decides with the resolved values (`Policy`); this module only carries them.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Takeover = Literal["always", "when-idle"]
TAKEOVERS: tuple[Takeover, ...] = ("always", "when-idle")
Volume = Annotated[int, msgspec.Meta(ge=0, le=100, description="the TV's volume in percent (0-100); "
                                                               "unset: castd leaves the volume alone")]


class Sharing(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """The sharing keys one layer sets (None: not set there)."""

    takeover: Takeover | None = None  # always: take the TV; when-idle: only a TV that runs nothing else
    sticky: bool | None = None  # come back when the person's app quits (within 3 s), step aside again
    wake: bool | None = None  # false: never launch on a TV in standby or on another input
    volume: Volume | None = None
    mute: bool | None = None
    silent_start: bool | None = None  # muted for the launch (no chime), unmuted once the picture plays
    restore_volume: bool | None = None  # put back the TV's own volume when castd ends or steps aside

    def over(self, below: "Sharing") -> "Sharing":
        """These keys, and `below`'s where these are unset."""
        mine = msgspec.structs.asdict(self)
        return Sharing(**{k: v if v is not None else getattr(below, k) for k, v in mine.items()})


SHARING_KEYS = tuple(Sharing.__struct_fields__)


class SharingKeys(msgspec.Struct, kw_only=True):
    """The sharing keys as flat fields of a TOML table or a request body (a mixin)."""

    takeover: Annotated[Takeover, msgspec.Meta(description="always: take the TV whatever plays; when-idle: "
                                                           "wait until it runs no other app")] | None = None
    sticky: Annotated[bool, msgspec.Meta(description="come back when the person's app quits")] | None = None
    wake: Annotated[bool, msgspec.Meta(description="false: do not cast to a TV in standby")] | None = None
    volume: Volume | None = None
    mute: bool | None = None
    silent_start: Annotated[bool, msgspec.Meta(description="mute for the launch, unmute once it plays")] | None = None
    restore_volume: Annotated[bool, msgspec.Meta(description="put the TV's volume back afterwards")] | None = None

    def sharing(self) -> Sharing:
        return Sharing(**{k: getattr(self, k) for k in SHARING_KEYS})
