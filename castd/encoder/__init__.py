"""The encoder child: renders the page (Xvfb + Chromium) and encodes it to HLS (PyAV)."""
