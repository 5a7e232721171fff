"""castd: put a live web dashboard on a TV on demand.

Layout (one room per job; processes from the top down, imports only downward):
  api/         the front end process (uvicorn + Starlette): HTTP routes, request schemas, stream files, and
               api/handle.py, its side of the supervisor (spawn, commands, snapshots, restarts)
  mqtt/        in the front end's process too: castd on an MQTT broker (Home Assistant discovery,
               control and state topics, groups); it uses api/'s checks and the supervisor snapshots
  supervisor/  the one process that decides: the wanted session, the encoder slot (slot.py), casting,
               the /status snapshot (status.py); loop.py is its one loop
  encoder/     the encoder child process: renders (Xvfb + Chromium), reads cameras (camera.py; scene.py
               puts a camera in the page's place or over it; audio.py the one AAC track: silence, or a
               camera's sound) and encodes (PyAV -> HLS);
               pagewatch.py decides (pure) when its page hangs and which cure comes next
  cast/        the cast worker child process: pychromecast, one link thread per device; freeze.py decides
               (pure) when the TV's player is stuck and needs a new LOAD, takeover.py (pure) whether castd
               may take a shared TV now (when-idle, sticky, standby, the idle screen)
  client/      the CLI client (`castd status|start|stop ...`): HTTP to a running castd
  programme/   what should be on screen at `now` (schedules, playlists, interrupts): pure decisions
               the supervisor asks once per pass; the front end shares its name lookups
  children/    how every parent runs a child: spawn on a Pipe (one version at a time), one restart policy
               and the retries after a give-up, liveness by asking, bounded output files, exit codes
  protocol.py, paths.py, specs.py, config.py, sharing.py, presets.py, urls.py, logs.py, procutil.py: the shared
               contract and building blocks below all of them (pipes' messages and states, files and
               URLs, device specs, settings)
"""

__version__ = "0.1.0"
