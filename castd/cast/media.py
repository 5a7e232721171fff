"""What castd asks a receiver to do: the apps, the LOAD of the live HLS stream, the DashCast page load.

The LOAD states what castd serves (castd/encoder/hls.py): an HLS master playlist of MPEG-TS segments
with H.264 + AAC, live (no ENDLIST), and nothing a player does not need. MPEG-TS is what every receiver
assumes when no segment format is given (the old MPL player did); declaring it is not harmless: a
receiver project saw Shaka Player, the receiver's HLS engine now, end playback at 0 ms without fetching
a segment when the LOAD carried hlsSegmentFormat/hlsVideoSegmentFormat (jellyfin-chromecast PR 953).
Only fMP4 segments must be declared (undeclared, the Default Media Receiver waits forever).
"""

from __future__ import annotations

from urllib.parse import urlsplit

NS_RECEIVER = "urn:x-cast:com.google.cast.receiver"
NS_MEDIA = "urn:x-cast:com.google.cast.media"
NS_DASHCAST = "urn:x-cast:com.madmod.dashcast"

APP_MEDIA_RECEIVER = "CC1AD845"  # Default Media Receiver (plays the HLS stream)
APP_DASHCAST = "84912283"  # DashCast (loads a web page itself): direct mode
IDLE_APP = "E8C28D3C"  # Backdrop (the ambient screen): counts as no app
APP_NAMES = {APP_MEDIA_RECEIVER: "Default Media Receiver", APP_DASHCAST: "DashCast"}

HLS_CONTENT_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_FORMATS: dict[str, dict[str, str]] = {  # castd segment type -> what the LOAD declares about it
    "ts": {},
    "fmp4": {"hlsSegmentFormat": "fmp4", "hlsVideoSegmentFormat": "fmp4"},
}


def app_for(mode: str) -> str:
    return APP_DASHCAST if mode == "direct" else APP_MEDIA_RECEIVER


def title_for(page_url: str) -> str:
    """What the TV and phones show for the session: the page's host, never its path or query (secrets)."""
    host = urlsplit(page_url).hostname or "dashboard"
    return f"castd: {host}"


def hls_media(url: str, title: str, segment_type: str = "ts") -> dict:
    """MediaInformation for castd's live HLS stream."""
    return {
        "contentId": url,
        "contentUrl": url,
        "contentType": HLS_CONTENT_TYPE,
        "streamType": "LIVE",
        **SEGMENT_FORMATS[segment_type],
        "metadata": {"metadataType": 0, "title": title},
    }


def load_request(url: str, title: str, app_session: str, segment_type: str = "ts") -> dict:
    """The media LOAD: play from the live edge at once."""
    return {"type": "LOAD", "media": hls_media(url, title, segment_type), "autoplay": True,
            "sessionId": app_session, "customData": {}}


def dashcast_request(page_url: str, app_session: str) -> dict:
    """DashCast's load message (it has no `type` and the receiver sends no reply)."""
    return {"url": page_url, "force": False, "reload": False, "reload_time": 0, "sessionId": app_session}
