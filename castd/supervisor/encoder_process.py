"""The supervisor's handle on its one encoder child: spawn, talk, end (with its whole group)."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec

from castd.encoder import child
from castd.protocol import ChildParams, Quit, child_message_decoder
from castd.supervisor.piped_child import PipedChild


class EncoderProcess(PipedChild):
    def __init__(self, params: ChildParams) -> None:
        self.params = params
        super().__init__(child.main, msgspec.msgpack.encode(params), "castd-encoder", child_message_decoder, Quit())
        self.quality = params.preset.name
        self.parked = params.session is None  # in warm standby, streaming nothing

    def end(self, grace: float | None = None) -> int | None:
        """End the child and its group (see PipedChild.end), then drop its log folder."""
        code = super().end(grace)
        shutil.rmtree(self.logs_folder(), ignore_errors=True)
        return code

    def logs_folder(self) -> Path:
        return Path(self.params.logs_dir)

    def log_tail(self, limit: int = 600) -> str:
        """The last lines Chromium/chromedriver and Xvfb printed, for a failure report."""
        parts = []
        for name in ("chromedriver.log", "xvfb.log"):
            path = self.logs_folder() / name
            if path.exists():
                text = path.read_bytes()[-limit:].decode(errors="replace").strip()
                if text:
                    parts.append(f"{name}: ...{text}")
        return "\n".join(parts)


def remove_session_files(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)

