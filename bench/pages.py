"""The benchmark's test pages, served by the tests' PageServer on loopback.

/color/RRGGBB (from the tests): one solid colour, so a decoded frame tells which page it shows.
/clock: the latency pattern (clockcode.py). /cycle: the colour clock (cyclecode.py).
/dashboard: a static dashboard like a Home Assistant or Grafana screen: cards, a drawn chart, and a clock
that changes once a second.
/hang/RRGGBB: paints that colour, then its renderer runs `while(true){}` half a second later (a hung page:
the picture stays, the renderer answers nothing). /hog/RRGGBB: paints that colour, then holds 32 MB more
of touched typed arrays every 200 ms up to 1.5 GB (outside V8's heap cap, so only castd's memory watchdog
stops it; the cap keeps a shared machine safe).
"""

from __future__ import annotations

from bench import clockcode, cyclecode
from bench.testhelpers import PageHandler, PageServer

DASHBOARD = """<!doctype html><html><head><title>dashboard</title><style>
html,body{margin:0;height:100%;background:#111827;color:#e5e7eb;font:20px sans-serif;overflow:hidden}
header{display:flex;justify-content:space-between;padding:18px 28px;background:#1f2937;font-size:28px}
main{display:grid;grid-template-columns:repeat(4,1fr);gap:18px;padding:18px 28px}
.card{background:#1f2937;border-radius:12px;padding:16px}.v{font-size:44px;color:#93c5fd;margin-top:6px}
.wide{grid-column:span 2}.chart{grid-column:span 4;height:260px}svg{width:100%;height:100%}
</style></head><body><header><span>Home</span><span id="clock">--:--:--</span></header><main>
<div class="card">Living room<div class="v">21.4 &deg;C</div></div>
<div class="card">Outside<div class="v">7.9 &deg;C</div></div>
<div class="card">Humidity<div class="v">48 %</div></div>
<div class="card">Power<div class="v">412 W</div></div>
<div class="card wide">Front door<div class="v">Locked</div></div>
<div class="card wide">Solar today<div class="v">12.6 kWh</div></div>
<div class="card chart"><svg viewBox="0 0 400 100" preserveAspectRatio="none">
<polyline fill="none" stroke="#60a5fa" stroke-width="1.5" points="0,80 20,74 40,77 60,60 80,64 100,52
120,55 140,40 160,45 180,38 200,42 220,30 240,36 260,28 280,34 300,25 320,31 340,22 360,29 380,24 400,27"/>
<polyline fill="none" stroke="#f59e0b" stroke-width="1.5" points="0,90 40,88 80,85 120,87 160,80 200,82
240,76 280,79 320,72 360,75 400,70"/></svg></div></main><script>
function tick(){document.getElementById("clock").textContent=new Date().toLocaleTimeString("en-GB")}
tick();setInterval(tick,1000);
</script></body></html>"""


HANG = """<!doctype html><html><body style="margin:0;background:#{colour}"><script>
setTimeout(function () {{ while (true) {{}} }}, 500);
</script></body></html>"""

HOG = """<!doctype html><html><body style="margin:0;background:#{colour}"><script>
var held = [];
var timer = setInterval(function () {{
  if (held.length >= 48) {{ clearInterval(timer); return; }}
  var block = new Uint8Array(32 * 1024 * 1024);
  for (var i = 0; i < block.length; i += 4096) block[i] = 1;
  held.push(block);
}}, 200);
</script></body></html>"""


class BenchPageHandler(PageHandler):
    def do_GET(self):  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == "/clock":
            self._send(clockcode.page_html())
        elif path == "/cycle":
            self._send(cyclecode.page_html())
        elif path == "/dashboard":
            self._send(DASHBOARD)
        elif path.startswith("/hang/"):
            self._send(HANG.format(colour=path.split("/")[2][:6]))
        elif path.startswith("/hog/"):
            self._send(HOG.format(colour=path.split("/")[2][:6]))
        else:
            super().do_GET()

    def _send(self, html: str) -> None:
        body = html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve() -> PageServer:
    return PageServer(BenchPageHandler)
