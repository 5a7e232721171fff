"""castd: put a live web dashboard on a TV on demand.

Layout (one room per job):
  api/         Starlette front end: HTTP routes, request schemas, stream files
  mqtt/        in the front end's process too: castd on an MQTT broker (Home Assistant discovery,
               control and state topics, groups); it uses api/'s checks and the supervisor snapshots
  supervisor/  the one process that decides: session state machine, encoder restarts
  encoder/     the child that renders (Xvfb + Chromium) and encodes (PyAV -> HLS)
  programme/   what should be on screen at `now` (schedules, playlists, interrupts): pure decisions
               the supervisor asks once per pass; the front end shares its name lookups
  config.py, logs.py, presets.py, protocol.py: shared building blocks
"""

__version__ = "0.1.0"
