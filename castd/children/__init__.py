"""How castd runs child processes, one way for every parent: the front end's supervisor, the supervisor's
encoder and its cast worker. A spawned child on a Pipe (piped.py), one record per supervised child with
its restart policy and the later retries after a give-up (supervised.py, policy.py, backoff.py), liveness
by asking (liveness.py), its helpers' output files kept to their last lines (logcap.py) and exit codes that
say why a child ended (exits.py). Nothing here knows what a child does; the features above pass their
factories in."""
