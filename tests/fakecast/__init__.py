"""A fake Google Cast device for tests, driven by the real pychromecast.

    from fakecast import FakeCastDevice
    with FakeCastDevice(name="Fake TV") as tv:
        cast = pychromecast.get_chromecast_from_host(tv.cast_info_tuple())
        cast.wait(5)
        ...
        tv.wait_for(lambda: tv.player_state == "PLAYING")

See README.md in this directory for behaviour, fault injection and pychromecast quirks.
"""

from .device import Envelope, FakeCastDevice
from .hlscheck import Fetch, MediaCheck, check_media
from .mdns import loopback_zeroconf
from .protocol import (APP_BACKDROP, APP_DASHCAST, APP_MEDIA_RECEIVER, APP_NETFLIX, APP_SPOTIFY, APP_YOUTUBE,
                       NS_DASHCAST, NS_MEDIA, NS_RECEIVER)
from .testmedia import HLSStream, StaticHTTPServer, write_hls

__all__ = [
    "APP_BACKDROP",
    "APP_DASHCAST",
    "APP_MEDIA_RECEIVER",
    "APP_NETFLIX",
    "APP_SPOTIFY",
    "APP_YOUTUBE",
    "NS_DASHCAST",
    "NS_MEDIA",
    "NS_RECEIVER",
    "Envelope",
    "FakeCastDevice",
    "Fetch",
    "HLSStream",
    "MediaCheck",
    "StaticHTTPServer",
    "check_media",
    "loopback_zeroconf",
    "write_hls",
]
