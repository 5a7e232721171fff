"""The supervisor process: castd's only decision maker (sessions, timers, encoder restarts)."""
