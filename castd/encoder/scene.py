"""What the encoder shows: the page, or a camera in its place; cameras in the corners over either.

The frame loop (child.py) asks this object two things. `navigate(url, ...)` stands in for the page
thread's: a "camera:NAME" URL puts that camera on screen instead of a page, any other URL goes to the
page thread. Both answer with a token, and `loaded_token`/`loaded_at` tell the loop's PageCut when the
token's picture is there, so a camera cuts in exactly like a new page: the segment before it ends
with its first frame, and the next one starts with a keyframe (pagecut.py). `compose(frame, now)`
turns the captured page frame into the frame to encode.

A camera is "there" at its first frame, or once its first attempt failed (then castd shows a card
with the offline mark instead of waiting: the TV must show that the doorbell camera is down). Until
then the page's last picture stays (the dashboard the TV had), and the page thread is left alone
under the camera: going back to the same URL afterwards needs no reload (the live page is still
there), so an interrupt "dashboard -> camera -> dashboard" ends in one frame, not a page load.
"""

from __future__ import annotations

import time
from typing import Callable

import av
import msgspec

from castd.config import Camera, camera_name
from castd.encoder import compose
from castd.encoder.audio import AudioFeed
from castd.encoder.camera import CameraReader
from castd.encoder.convert import Yuv420Converter
from castd.logs import log
from castd.protocol import CameraStatus, Overlay, PageFailed, PageLoaded, PageOverrides

STALE = 2.0  # seconds without a new camera frame before its picture gets the offline mark
NOT_LOADED = -1


class Scene:
    """The frame loop's sources. Invariant: at most one reader per camera name, and a reader runs only
    while its camera is wanted (full screen, leaving full screen, or in an overlay)."""

    def __init__(self, page, cameras: dict[str, Camera], width: int, height: int,
                 report: Callable[[msgspec.Struct], None], overlays: list[Overlay] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.page = page
        self.cameras = cameras
        self.width, self.height = width, height
        self._report = report
        self._clock = clock
        self._tokens = 0
        self._token = NOT_LOADED  # the newest navigation's token (ours)
        self._camera_wanted = False  # the newest navigation is a camera's
        self._page_token: int | None = None  # the page thread's token of the page it was last sent to
        self._page_url: str | None = None  # the URL the page thread was last sent to
        self._asked_at = 0.0
        self._nav, self._url = 0, ""
        self._full: CameraReader | None = None  # the camera full screen (wanted, or until the page is back)
        self._loaded_at: float | None = None  # when the full-screen camera's picture was first there
        self._overlays: list[tuple[Overlay, CameraReader]] = []
        self._to_yuv = Yuv420Converter()
        if overlays:  # a restarted child: the overlays of the session it continues
            self.set_overlays(overlays)

    # ---- what the loop asks ---------------------------------------------------------------------
    def navigate(self, url: str, nav: int, page: PageOverrides | None = None) -> int:
        self._tokens += 1
        self._token, self._nav, self._url, self._asked_at = self._tokens, nav, url, self._clock()
        name = camera_name(url)
        if name is not None:
            self._camera_wanted = True
            self._loaded_at = None
            if name not in self.cameras:  # gone from the config since (a resumed interrupt): say so on screen
                log.warning("no such camera", camera=name)
                self._report(PageFailed(nav=nav, url=url, error=f"camera {name}: not in the config"))
                old, self._full, self._loaded_at = self._full, None, self._clock()
                self._release(old)
            elif self._full is None or self._full.name != name:
                old, self._full = self._full, self._reader(name, "full")
                self._release(old)
            return self._token
        self._camera_wanted = False
        if self._full is not None and url == self._page_url and self._page_token == self.page.loaded_token \
                and not self.page.holding:
            log.info("page under the camera is back", url=url)  # no reload: it ran on underneath
            self._report(PageLoaded(nav=nav, url=url, seconds=0.0))
        else:
            self._page_token, self._page_url = self.page.navigate(url, nav, page), url
        return self._token

    @property
    def loaded_token(self) -> int:
        return self._token if self._loaded() else NOT_LOADED

    @property
    def loaded_at(self) -> float:
        if not self._camera_wanted:
            return max(self.page.loaded_at, self._asked_at)
        return self._loaded_at if self._loaded_at is not None else 0.0

    @property
    def holding(self) -> bool:
        """The page thread holds the last picture (a page loading): only when a page is wanted."""
        return not self._camera_wanted and self.page.holding

    def _loaded(self) -> bool:
        if not self._camera_wanted:
            return self._page_token is not None and self.page.loaded_token == self._page_token
        camera = self._full
        if camera is None:
            return self._loaded_at is not None  # a camera not in the config: its card is there at once
        if self._loaded_at is None and (camera.frame is not None or camera.failures):
            self._loaded_at = self._clock()
            if camera.frame is not None:
                self._report(PageLoaded(nav=self._nav, url=self._url, seconds=round(self._loaded_at
                                                                                     - self._asked_at, 3)))
            else:
                self._report(PageFailed(nav=self._nav, url=self._url, error=f"camera {camera.name}: "
                                                                            f"{camera.error}"))
        return self._loaded_at is not None

    def set_overlays(self, items: list[Overlay]) -> None:
        """The cameras over the picture from now on (a reader kept where the camera stays)."""
        kept: list[tuple[Overlay, CameraReader]] = []
        old = {reader.name: reader for _, reader in self._overlays}
        for item in items:
            if item.camera not in self.cameras:
                continue
            reader = old.pop(item.camera, None) or self._reader(item.camera, "overlay")
            kept.append((item, reader))
        self._overlays = kept
        for reader in old.values():
            self._release(reader)

    def compose(self, frame: av.VideoFrame, now: float) -> av.VideoFrame:
        """The frame to encode: the page's, or the full-screen camera's, with the overlays on top."""
        full = self._full
        if full is not None and not self._camera_wanted and self.page.loaded_token == self._page_token:
            self._full = None  # the page is back on screen
            self._release(full)
            full = None
        owned = False
        if full is not None and (not self._camera_wanted or self._loaded()):
            frame, owned = self._full_screen(full, now)
        elif full is None and self._camera_wanted and self._loaded_at is not None:
            frame, owned = compose.blank(self.width, self.height, compose.CARD), True
            compose.mark_offline(frame, 0, 0, self.width)
        if not self._overlays:
            return frame
        out = frame if owned else compose.copy(self._to_yuv(frame))
        for item, reader in self._overlays:
            size = item.size or self.cameras[item.camera].overlay_size
            picture = reader.frame
            if picture is None and not reader.failures:
                continue  # connecting: nothing to show yet
            cam_w, cam_h = (picture.width, picture.height) if picture is not None else (16, 9)
            x, y, w, h = compose.overlay_box(item, size, self.width, self.height, cam_w, cam_h)
            scaled = reader.picture(w, h) if picture is not None else compose.blank(w, h, compose.CARD)
            if scaled is not None:
                compose.paste(out, scaled, x, y)
            if self._stale(reader, now):
                compose.mark_offline(out, x, y, w)
        return out

    def _full_screen(self, camera: CameraReader, now: float) -> tuple[av.VideoFrame, bool]:
        """The camera letterboxed to the picture's size, and whether the frame is a new one of ours
        (False: the reader's cached picture, which nobody may draw on)."""
        picture = camera.frame
        stale = self._stale(camera, now)
        if picture is None:
            out = compose.blank(self.width, self.height, compose.CARD)
            compose.mark_offline(out, 0, 0, self.width)
            return out, True
        w, h = compose.fit(picture.width, picture.height, self.width, self.height)
        scaled = camera.picture(w, h)
        assert scaled is not None
        if (w, h) == (self.width, self.height) and not stale:
            return scaled, False
        out = compose.blank(self.width, self.height) if (w, h) != (self.width, self.height) \
            else compose.copy(scaled)
        x, y = compose.even((self.width - w) / 2), compose.even((self.height - h) / 2)
        if (w, h) != (self.width, self.height):
            compose.paste(out, scaled, x, y)
        if stale:
            compose.mark_offline(out, x, y, w)
        return out, True

    def _stale(self, reader: CameraReader, now: float) -> bool:
        """Marked offline: the last attempt failed, or a live stream sent nothing for STALE s (a snapshot
        shown while the first connection is made is not marked)."""
        if reader.state == "offline":
            return True
        return reader.state == "live" and (reader.frame_at is None or now - reader.frame_at > STALE)

    # ---- cameras -------------------------------------------------------------------------------------
    def _reader(self, name: str, shown: str) -> CameraReader:
        for reader in [self._full] + [r for _, r in self._overlays]:
            if reader is not None and reader.name == name:
                reader.shown = shown
                return reader  # one reader per camera, whichever way it is shown
        camera = self.cameras.get(name)
        if camera is None:  # the front end checked the name against the same config: not expected
            raise KeyError(f"no camera named {name!r}")
        log.info("camera connecting", camera=name, shown=shown)
        return CameraReader(name, camera, shown).start()

    def _release(self, reader: CameraReader | None) -> None:
        """Stop a reader nothing shows any more (full screen and overlays share one per camera)."""
        if reader is None or reader is self._full or any(reader is r for _, r in self._overlays):
            return
        sound = reader.audio
        if sound is not None:  # how often its sound was re-synced (each is a click): dropped late, waited for
            log.info("camera closed", camera=reader.name, audio=sound.codec, audio_dropped=sound.dropped,
                     audio_waits=sound.waits)
        else:
            log.info("camera closed", camera=reader.name)
        reader.stop()

    def audio_feed(self) -> AudioFeed | None:
        """Whose sound the stream carries now: the full-screen camera's once its picture is on screen,
        else the first overlay's, if that camera has `audio = true`; None: silence (pages, cards)."""
        full = self._full
        if full is not None and self._camera_wanted and self._loaded_at is not None and full.audio is not None:
            return full.audio
        if full is None or not self._camera_wanted:
            for _, reader in self._overlays:
                if reader.audio is not None and reader.frame is not None:
                    return reader.audio
        return None

    def readers(self) -> dict[str, CameraReader]:
        """The cameras read now, by name (full screen first)."""
        found = {self._full.name: self._full} if self._full is not None else {}
        for _, reader in self._overlays:
            found.setdefault(reader.name, reader)
        return found

    def statuses(self) -> list[CameraStatus]:
        return [reader.status() for reader in self.readers().values()]

    def close(self) -> None:
        for reader in [self._full] + [r for _, r in self._overlays]:
            if reader is not None:
                reader.stop()
        self._full, self._overlays = None, []
