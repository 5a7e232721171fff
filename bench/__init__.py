"""castd's benchmark suite (`python -m bench`, `make bench`): start and switch times, page-to-segment
latency, CPU and memory from /proc, castd's encoder against the ffmpeg command line, and /status under
load. It drives the real daemon over its HTTP API only, so it measures what a user gets."""
