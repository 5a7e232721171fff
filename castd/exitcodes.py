"""The `castd` command's exit codes, one definition for the CLI, the daemon and the systemd unit.

0 ok; 1 a failure (castd unreachable, the session failed, the server stopped on an error); 2 usage: bad
arguments, a bad config, or a request castd refused as invalid (400, 403, 404, 413, 415, 422: what
the person typed, or named, is wrong; a 401, 409 or 429 is a 1: the request may work another time);
3 in use: another castd holds the runtime dir, or something holds the port. systemd's unit does not
restart on 2 (RestartPreventExitStatus=2: a bad config stays bad), and does on 3 (the other instance
may end). 4 upgraded: castd's files on disk are a newer castd than the one running (a child refused to
mix versions), so castd ends for systemd to start the new one. 5 waiting: `castd start --wait` found
every TV of the session waiting for another app (or for standby to end): the stream runs and castd
casts when a TV is free, but a script should know the picture is not on yet. Child
processes have codes of their own (castd/children/exits.py); these are what a person or a unit sees.
"""

from __future__ import annotations

from castd.children import exits

OK = 0
FAILURE = 1
USAGE = 2
IN_USE = 3
UPGRADED = exits.VERSION_MISMATCH  # 4: one definition, where the children's codes live
WAITING = 5
