"""Keep Chromium on the allowlist, whatever the page does (redirects, scripts, meta refresh, window.open).

The API refuses /start URLs off the allowlist, but a page on it can still redirect or script its way
elsewhere. Chromium must refuse those navigations itself, before any request leaves: a tiny unpacked
extension with declarativeNetRequest rules (block every top-level navigation, allow the allowlisted
prefixes at a higher priority) does that inside the browser's network stack, for every tab and
window, with no event loop on our side. Polling `current_url` would only notice after the fact, and
DevTools `Fetch` interception needs an event stream that selenium's chromedriver calls cannot serve
while a page load is blocking them. Sub-frames are left alone: what a dashboard embeds is its own
choice; what the TV shows at top level is castd's.
"""

from __future__ import annotations

import json
from pathlib import Path

from castd.urls import Allowlist

_MANIFEST = {
    "manifest_version": 3,
    "name": "castd navigation guard",
    "version": "1.0",
    "description": "Blocks top-level navigation off castd's allowlist.",
    "permissions": ["declarativeNetRequest"],
    "declarative_net_request": {"rule_resources": [{"id": "allowlist", "enabled": True, "path": "rules.json"}]},
}
BLOCKED_MESSAGE = "navigation off the allowlist was blocked"


class NavGuard:
    """The allowlist as Chromium flags (the extension) and as a check of where the page ended up."""

    def __init__(self, prefixes: list[str] | tuple[str, ...]) -> None:
        self.allowlist = Allowlist(tuple(prefixes))

    def __bool__(self) -> bool:
        return bool(self.allowlist)

    def rules(self) -> list[dict]:
        """declarativeNetRequest rules: block all top-level navigations, then allow each prefix."""
        main = ["main_frame"]
        rules: list[dict] = [{"id": 1, "priority": 1, "action": {"type": "block"},
                              "condition": {"resourceTypes": main}}]
        for i, prefix in enumerate(self.allowlist.prefixes, start=2):
            rules.append({"id": i, "priority": 2, "action": {"type": "allow"},
                          "condition": {"urlFilter": "|" + prefix, "isUrlFilterCaseSensitive": True,
                                        "resourceTypes": main}})
        return rules

    def chromium_flags(self, folder: Path) -> list[str]:
        """Write the extension into `folder` and return the flag that loads it (none without an allowlist)."""
        if not self.allowlist:
            return []
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "manifest.json").write_text(json.dumps(_MANIFEST))
        (folder / "rules.json").write_text(json.dumps(self.rules()))
        return [f"--load-extension={folder}"]

    def landed_off_list(self, current_url: str) -> bool:
        """True when the page ended up (blocked) at a URL off the allowlist, e.g. after a redirect."""
        if not self.allowlist or not current_url.startswith(("http:", "https:")):
            return False
        return not self.allowlist.allows_url(current_url)
