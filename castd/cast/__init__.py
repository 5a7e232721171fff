"""Casting to Chromecast / Google TV devices.

pychromecast runs only in the cast worker process (worker.py), which the supervisor starts and restarts:
a fault in pychromecast (it has segfaulted under a reply race) costs a worker restart, never the session.
"""
