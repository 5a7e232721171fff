"""The colour clock: a picture that is one flat colour of a 64-colour palette, changing every 0.2 s by the
wall clock, so the time a player presents a colour tells when that picture was drawn (12.8 s period).

bench/dash.py draws it into its synthetic source; bench/pages.py serves it as a page (`/cycle`) for castd
to render, and bench/glass.py reads it back from the frames the player presents: the first frame drawn
after an encoder SIGKILL, which a held picture (the crash bridge) does not count as. Flat colours survive
H.264 well: neighbouring palette colours are 85 apart in one channel, the harness notes a change at 36.
"""

from __future__ import annotations

import math

STEP = 0.2  # seconds per palette colour
LEVELS = (0, 85, 170, 255)
PALETTE = [(r, g, b) for r in LEVELS for g in LEVELS for b in LEVELS]
PERIOD = len(PALETTE) * STEP  # 12.8 s: latencies must stay under it


def nearest(rgb) -> int:
    """The palette index of a presented colour."""
    return min(range(len(PALETTE)), key=lambda i: sum(abs(a - b) for a, b in zip(PALETTE[i], rgb)))


def drawn_since(rgb, presented: float) -> float:
    """The wall time the step of colour `rgb` began, the latest one at or before `presented` (the picture
    was drawn in [that, that + STEP)); assumes the player is less than PERIOD behind."""
    k = nearest(rgb)
    n = math.floor((presented / STEP - k) / len(PALETTE))
    return (n * len(PALETTE) + k) * STEP


def page_html() -> str:
    """A page whose background is PALETTE[floor(Date.now() / STEP) mod 64], set on every animation frame."""
    colours = ",".join(f'"#{r:02x}{g:02x}{b:02x}"' for r, g, b in PALETTE)
    return f"""<!doctype html><html><head><title>cycle</title><style>html,body{{margin:0;height:100%}}</style>
</head><body><script>
const colours = [{colours}];
function draw() {{
  document.body.style.background = colours[Math.floor(Date.now() / {STEP * 1000:g}) % colours.length];
  requestAnimationFrame(draw);
}}
draw();
</script></body></html>"""
