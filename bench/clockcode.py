"""The latency pattern: a test page draws its own clock as a row of black and white blocks, and the
benchmark reads it back from decoded frames.

Each of the 40 blocks is one bit: 32 bits of Date.now() in ms (mod 2**32; the full value is
recovered from the reader's own clock) and an 8-bit check (byte sum XOR 0xA5), so a frame that
caught the canvas mid-update, or a page that is not the clock, reads as None instead of a wrong
time. Blocks of 28 px survive H.264 at castd's bitrates with a wide margin.
"""

from __future__ import annotations

VALUE_BITS = 32
CHECK_BITS = 8
BITS = VALUE_BITS + CHECK_BITS
BLOCK = 28
X0, Y0 = 40, 40
WRAP = 1 << VALUE_BITS


def check_of(value: int) -> int:
    return (sum((value >> (8 * i)) & 0xFF for i in range(4)) & 0xFF) ^ 0xA5


def page_html() -> str:
    """A grey page whose canvas shows Date.now() on every animation frame."""
    width = 2 * X0 + BITS * BLOCK
    return f"""<!doctype html><html><head><title>clock</title><style>
html,body{{margin:0;background:#808080;overflow:hidden}}canvas{{position:absolute;left:0;top:0}}
</style></head><body><canvas id="c" width="{width}" height="{Y0 * 2 + BLOCK}"></canvas><script>
const g = document.getElementById("c").getContext("2d");
function draw() {{
  const v = Date.now() % {WRAP};
  let sum = 0;
  for (let i = 0; i < 4; i++) sum += Math.floor(v / 2 ** (8 * i)) % 256;
  const check = (sum % 256) ^ 0xA5;
  for (let k = 0; k < {BITS}; k++) {{
    const bit = k < {VALUE_BITS} ? Math.floor(v / 2 ** k) % 2 : (check >> (k - {VALUE_BITS})) & 1;
    g.fillStyle = bit ? "#ffffff" : "#000000";
    g.fillRect({X0} + k * {BLOCK}, {Y0}, {BLOCK}, {BLOCK});
  }}
  requestAnimationFrame(draw);
}}
requestAnimationFrame(draw);
</script></body></html>"""


def read_value(frame) -> int | None:
    """The 32-bit clock value drawn in a decoded frame (any PyAV VideoFrame), or None."""
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    data = bytes(plane)
    stride = plane.line_size
    bits = 0
    for k in range(BITS):
        cx, cy = X0 + k * BLOCK + BLOCK // 2, Y0 + BLOCK // 2
        total = 0
        for dy in (-4, 0, 4):
            row = (cy + dy) * stride
            total += data[row + cx - 4] + data[row + cx] + data[row + cx + 4]
        if total / 9 > 128:
            bits |= 1 << k
    value, check = bits & (WRAP - 1), bits >> VALUE_BITS
    return value if check == check_of(value) else None


def unwrap_ms(value: int, now_ms: int) -> int:
    """The full Date.now() whose low 32 bits are `value`, closest before `now_ms`."""
    return now_ms - ((now_ms - value) % WRAP)
