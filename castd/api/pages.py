"""Pages castd serves itself: the embedded demo dashboard."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse


def _web(name: str) -> str:
    return resources.files("castd").joinpath("web", name).read_text(encoding="utf-8")


async def demo(request: Request) -> HTMLResponse:
    return HTMLResponse(_web("demo.html"))
