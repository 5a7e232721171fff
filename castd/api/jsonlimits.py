"""How deeply a JSON body may nest, checked on the raw bytes before any parser recurses into it.

castd's requests are flat objects; a body nested thousands of levels deep is an attack on the
parser (msgspec raises RecursionError on deep nesting rather than a decode error), not a request.
"""

from __future__ import annotations

import re

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")


def nesting_depth(body: bytes, stop_at: int | None = None) -> int:
    """The deepest nesting of arrays/objects outside strings (stops counting past `stop_at`)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_at is not None and deepest > stop_at:
                    break
        else:
            depth -= 1
    return deepest
