"""The HTTP front end (Starlette): validates requests, forwards commands, serves the stream."""
