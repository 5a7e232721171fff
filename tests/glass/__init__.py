"""At the glass: castd's stream played in Shaka Player, the Cast Web Receiver's HLS engine, in headless Chromium.

    from glass import ShakaPlayer
    with ShakaPlayer("shaka4") as player:
        player.load(url)
        player.wait_colour((255, 0, 0))

Shaka comes from npm, pinned in package-lock.json here (`make test` runs `npm ci`); see player.py.
"""

from .player import (LINES, STILL, VERSIONS, Colour, PageServer, PlayerState, ShakaError, ShakaPlayer, Stall,
                     close_to, installed)

__all__ = ["LINES", "STILL", "VERSIONS", "Colour", "PageServer", "PlayerState", "ShakaError", "ShakaPlayer", "Stall",
           "close_to", "installed"]
