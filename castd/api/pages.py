"""Pages castd serves itself: the preview page at / and the embedded demo dashboard."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse


def _web(name: str) -> str:
    return resources.files("castd").joinpath("web", name).read_text(encoding="utf-8")


async def preview(request: Request) -> HTMLResponse:
    """What is being cast right now: the picture (from /snapshot.jpg), the state, a stop button."""
    return HTMLResponse(_web("preview.html"), headers={"Cache-Control": "no-cache"})


async def demo(request: Request) -> HTMLResponse:
    return HTMLResponse(_web("demo.html"))
