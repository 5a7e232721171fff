"""Cast v2 wire format: 4-byte big-endian length + protobuf CastMessage with a JSON payload."""

from __future__ import annotations

import json
import struct

from pychromecast.generated.cast_channel_pb2 import CastMessage

NS_CONNECTION = "urn:x-cast:com.google.cast.tp.connection"
NS_HEARTBEAT = "urn:x-cast:com.google.cast.tp.heartbeat"
NS_RECEIVER = "urn:x-cast:com.google.cast.receiver"
NS_MEDIA = "urn:x-cast:com.google.cast.media"
NS_DASHCAST = "urn:x-cast:com.madmod.dashcast"  # pychromecast.controllers.dashcast.APP_NAMESPACE

PLATFORM_ID = "receiver-0"
BROADCAST_ID = "*"

APP_MEDIA_RECEIVER = "CC1AD845"
APP_DASHCAST = "84912283"
APP_YOUTUBE = "233637DE"
APP_NETFLIX = "CA5E8412"  # speaks only its own namespace: no MEDIA_STATUS for anyone
APP_BACKDROP = "E8C28D3C"  # the idle screen (ambient mode, photo frame): isIdleScreen
APP_SPOTIFY = "CC32E753"  # what a speaker group's cast looks like on a member device

# What a real device advertises for these apps (observed shapes; the fake only needs the media
# namespace to be present for pychromecast's MediaController to attach).
APP_INFO: dict[str, tuple[str, list[str]]] = {
    APP_MEDIA_RECEIVER: (
        "Default Media Receiver",
        [
            "urn:x-cast:com.google.cast.cac",
            "urn:x-cast:com.google.cast.debugoverlay",
            "urn:x-cast:com.google.cast.broadcast",
            NS_MEDIA,
        ],
    ),
    APP_DASHCAST: ("DashCast", [NS_DASHCAST]),
    APP_YOUTUBE: ("YouTube", ["urn:x-cast:com.google.youtube.mdx", NS_MEDIA]),
    APP_NETFLIX: ("Netflix", ["urn:x-cast:com.netflix.cast"]),
    APP_BACKDROP: ("Backdrop", ["urn:x-cast:com.google.cast.sse"]),
    APP_SPOTIFY: ("Spotify", ["urn:x-cast:com.spotify.chromecast.secure.v1", NS_MEDIA]),
}
IDLE_SCREEN_APPS = frozenset({APP_BACKDROP})

MAX_MESSAGE_SIZE = 64 * 1024  # Cast v2 limit on a single message


def encode(source_id: str, destination_id: str, namespace: str, payload: dict) -> bytes:
    """Return one framed message, ready to write to the TLS stream."""
    msg = CastMessage()
    msg.protocol_version = CastMessage.CASTV2_1_0
    msg.source_id = source_id
    msg.destination_id = destination_id
    msg.namespace = namespace
    msg.payload_type = CastMessage.STRING
    msg.payload_utf8 = json.dumps(payload, ensure_ascii=False)
    body = msg.SerializeToString()
    return struct.pack(">I", len(body)) + body


def decode(body: bytes) -> tuple[CastMessage, dict | None]:
    """Parse one message body (without its length prefix); payload is None if not a JSON object."""
    msg = CastMessage()
    msg.ParseFromString(body)
    payload = None
    if msg.payload_type == CastMessage.STRING:
        try:
            data = json.loads(msg.payload_utf8)
        except ValueError:
            data = None
        if isinstance(data, dict):
            payload = data
    return msg, payload
