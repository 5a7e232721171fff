"""Messages on the pipe between the supervisor and the cast worker (msgspec tagged unions).

The supervisor always sends the whole wanted state of a session (CastWant), so a restarted worker
picks up where the dead one was: `app_session` tells it which receiver session castd had launched on
each device, so it can adopt a stream that is still playing instead of loading it again.
"""

from __future__ import annotations

import msgspec

from castd.protocol import CastDevice
from castd.sharing import Sharing


class CastTarget(msgspec.Struct):
    spec: str
    app_session: str | None = None  # receiver sessionId of castd's app there, when known


class CastWant(msgspec.Struct, tag=True):
    """Cast this session to these devices. stream_path None (hls): connect and launch only, the stream
    has no segment yet; LOAD once it is set."""

    session: str
    mode: str  # hls | direct
    title: str
    devices: list[CastTarget]
    stream_path: str | None = None
    page_url: str | None = None  # direct mode
    sharing: Sharing = Sharing()  # how to share the TVs (castd/cast/takeover.py); unset keys: the config's


class CastStop(msgspec.Struct, tag=True):
    """Stop the media and quit castd's app on these devices, where the device still shows it."""

    session: str
    devices: list[CastTarget]


class CastQuit(msgspec.Struct, tag=True):
    pass


WorkerCommand = CastWant | CastStop | CastQuit


class DeviceReport(msgspec.Struct, tag=True):
    session: str
    device: CastDevice
    app_session: str | None = None


WorkerEvent = DeviceReport

_encoder = msgspec.msgpack.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


command_decoder = msgspec.msgpack.Decoder(WorkerCommand)
event_decoder = msgspec.msgpack.Decoder(WorkerEvent)
