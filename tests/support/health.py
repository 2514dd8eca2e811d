"""Real endpoints on 127.0.0.1 for health check tests: HTTP(S) servers, TCP listeners, a server
that accepts and never answers, and an address whose connections never complete.

``HttpEndpoint(tls=...)`` runs ``http.server`` in a thread; what it answers (``status``,
``body``, ``chunked``, ``raw_head``) can change while it runs, and it records every request's
path and headers and, with TLS, the server name each client sent (SNI). The TLS certificate is
self-signed and made at test time with ``cryptography``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import socket
import ssl
import tempfile
import threading
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = [
    "BlackHole",
    "HttpEndpoint",
    "SilentEndpoint",
    "TcpEndpoint",
    "closed_port",
    "self_signed_certificate",
]

HOST = "127.0.0.1"


@cache
def self_signed_certificate() -> tuple[str, str]:
    """(certificate file, key file) of a self-signed EC certificate for ``fastdns.test``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fastdns.test")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("fastdns.test")]), False)
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="fastdns-health-tls-"))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


class HttpEndpoint:
    """An HTTP (or, with ``tls``, HTTPS) server on 127.0.0.1 that answers every GET."""

    def __init__(self, tls: bool = False, status: int = 200, body: bytes = b"ok"):
        self.status = status
        self.body = body
        self.chunked = False
        self.raw_head: bytes | None = None  # sent instead of a proper status line and headers
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.server_names: list[str | None] = []
        self.served = threading.Semaphore(0)  # released once per request answered
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                endpoint.requests.append((self.path, dict(self.headers.items())))
                try:
                    endpoint.answer(self)
                finally:
                    endpoint.served.release()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self_signed_certificate())
            context.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        if self.raw_head is not None:
            handler.wfile.write(self.raw_head)
            handler.close_connection = True
            return
        handler.send_response(self.status)
        if self.chunked:
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for start in range(0, len(self.body), 1000):
                piece = self.body[start : start + 1000]
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            handler.wfile.write(b"0\r\n\r\n")
        else:
            handler.send_header("Content-Length", str(len(self.body)))
            handler.end_headers()
            handler.wfile.write(self.body)
        handler.close_connection = True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> HttpEndpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TcpEndpoint:
    """A listener on 127.0.0.1 that accepts connections and closes them."""

    def __init__(self):
        self.sock = socket.create_server((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def __enter__(self) -> TcpEndpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SilentEndpoint:
    """A listener on 127.0.0.1 that accepts connections and never sends a byte."""

    def __init__(self, send: bytes = b""):
        self.send = send  # sent once after accepting (a partial response), then silence
        self.sock = socket.create_server((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                self.connections.append(conn)
                if self.send:
                    conn.recv(65536)
                    conn.sendall(self.send)

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def __enter__(self) -> SilentEndpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BlackHole:
    """A port on 127.0.0.1 where a TCP connection never completes: a listener that never
    accepts, its (zero-length) backlog filled, so the kernel drops new SYNs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((HOST, self.port))
            self.fillers.append(filler)

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.sock.close()

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]
