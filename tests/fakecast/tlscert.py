"""A throw-away self-signed certificate for the fake device's TLS server.

Generated once per process with the `cryptography` package when it is importable, else with the
`openssl` command line (present on Debian). Real senders, pychromecast included, do not verify the
device certificate (CERT_NONE), so any certificate works.
"""

from __future__ import annotations

import atexit
import shutil
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()
_paths: tuple[str, str] | None = None


def _with_cryptography(cert: Path, key: Path) -> bool:
    try:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return False
    pkey = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FakeCast")])
    now = datetime.datetime.now(datetime.timezone.utc)
    crt = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pkey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(pkey, hashes.SHA256())
    )
    key.write_bytes(
        pkey.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert.write_bytes(crt.public_bytes(serialization.Encoding.PEM))
    return True


def _with_openssl(cert: Path, key: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("fakecast needs either the 'cryptography' package or the openssl command")
    subprocess.run(
        [
            exe, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=FakeCast",
        ],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=30,
    )


def cert_paths() -> tuple[str, str]:
    """(certfile, keyfile), created on first use and deleted at interpreter exit."""
    global _paths
    with _lock:
        if _paths is None:
            tmp = Path(tempfile.mkdtemp(prefix="fakecast-tls-"))
            atexit.register(shutil.rmtree, tmp, True)
            cert, key = tmp / "cert.pem", tmp / "key.pem"
            if not _with_cryptography(cert, key):
                _with_openssl(cert, key)
            _paths = (str(cert), str(key))
        return _paths


def server_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert_paths())
    return ctx
