"""`castd start/stop/status/devices`: the command line as an HTTP client of a running castd."""
