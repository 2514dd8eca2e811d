"""One probe of an endpoint, and the rules that turn probe results into a health status.

``probe(config)`` makes one request the way a Route 53 health checker does (Developer Guide,
"How Amazon Route 53 determines whether a health check is healthy") and returns an
``Observation``: success or failure and a status text in Route 53's words
("Success: HTTP Status Code 200, OK", "Failure: HTTP Status Code 503, Service Unavailable",
"Failure: Connection timed out. ..."):

- HTTP and HTTPS: a TCP connection within 4 s, then an HTTP status of 2xx or 3xx within 2 s
  after connecting (the TLS handshake and the response head count in those 2 s). The response
  headers must be in RFC 7230 format. HTTPS certificates are not validated ("HTTPS health checks
  don't validate SSL/TLS certificates"). With ``EnableSNI`` the FullyQualifiedDomainName goes in
  the TLS client hello.
- HTTP_STR_MATCH and HTTPS_STR_MATCH: as above, then the body within 2 s more; ``SearchString``
  (case-sensitive) must appear entirely in its first 5,120 bytes.
- TCP: a TCP connection within 10 s.
- The request is ``GET ResourcePath`` with a Host header of FullyQualifiedDomainName, or the IP
  address when there is none, plus ``:Port`` when the port is not the scheme's default (API
  reference, HealthCheckConfig ``FullyQualifiedDomainName``). Without an IPAddress the checker
  resolves the domain name (IPv4 only) before every probe.

The timeouts are Route 53's by default and a parameter (``Timeouts``) so that tests can shorten
them.

The status rules (Developer Guide, same page, and API reference ``FailureThreshold``,
``Inverted``, ``Disabled``, ``HealthThreshold``):

- ``ThresholdStatus``: a check's status changes only after ``FailureThreshold`` consecutive
  results that disagree with it; a new check is healthy until it has that many failures.
- ``reported_status``: Disabled means healthy ("Route 53 considers the status of the health check
  to always be healthy"); Inverted then reports the opposite, so Disabled and Inverted together
  is always unhealthy: the documented way to take a resource out of service ("If you want to
  stop routing traffic to a resource, change the value of Inverted"). A new inverted check is
  therefore unhealthy until it has data, as Route 53 documents.
- ``calculated_status``: healthy when at least HealthThreshold children are healthy (0: always
  healthy; more than the number of children: always unhealthy). A child that does not exist
  counts as unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from fastdns.health.config import HTTPS_TYPES, STRING_MATCH_TYPES, HealthCheckConfig

__all__ = [
    "ROUTE53_TIMEOUTS",
    "SEARCH_WINDOW",
    "Observation",
    "ThresholdStatus",
    "Timeouts",
    "calculated_status",
    "probe",
    "reported_status",
]

log = logging.getLogger("fastdns.health")

SEARCH_WINDOW = 5120  # bytes of the body searched for SearchString
MAX_RESPONSE_HEAD = 64 * 1024
USER_AGENT = "fastdns-health-check"
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?")
_HEADER_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")


@dataclass(frozen=True)
class Timeouts:
    """Seconds a probe waits (Route 53's values by default)."""

    connect: float = 4.0  # HTTP(S): the TCP connection
    response: float = 2.0  # HTTP(S): from connected to the whole response head
    body: float = 2.0  # *_STR_MATCH: from the response head to the body
    tcp_connect: float = 10.0  # TCP checks: the connection


ROUTE53_TIMEOUTS = Timeouts()


@dataclass(frozen=True)
class Observation:
    """The result of one probe."""

    success: bool
    status: str  # Route 53's StatusReport Status: "Success: ..." or "Failure: ..."
    checked_at: dt.datetime  # UTC
    checker_ip: str | None = None  # the local address the probe came from

    @property
    def checked_time(self) -> str:
        """``checked_at`` as Route 53 writes CheckedTime: ISO 8601, UTC, milliseconds, Z."""
        return self.checked_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ThresholdStatus:
    """One checker's status from a stream of results (Route 53's FailureThreshold rule): it
    changes only after ``failure_threshold`` consecutive results that disagree with it."""

    def __init__(self, failure_threshold: int, healthy: bool = True):
        self.failure_threshold = failure_threshold
        self.healthy = healthy
        self.disagreeing = 0  # consecutive results that disagree with ``healthy``

    def record(self, success: bool) -> bool:
        """Count one result; True if the status changed."""
        if success == self.healthy:
            self.disagreeing = 0
            return False
        self.disagreeing += 1
        if self.disagreeing < self.failure_threshold:
            return False
        self.healthy = success
        self.disagreeing = 0
        return True


def reported_status(measured: bool, config: HealthCheckConfig) -> bool:
    """The status routing uses: Disabled makes it healthy, then Inverted flips it."""
    healthy = True if config.disabled else measured
    return healthy != config.inverted


def calculated_status(
    config: HealthCheckConfig, child_healthy: Callable[[str], bool | None]
) -> tuple[bool, str]:
    """A CALCULATED check's measured status and why; ``child_healthy(id)`` is a child's
    reported status, None for a child that does not exist (counted as unhealthy)."""
    children = config.children
    healthy = sum(1 for child in children if child_healthy(child))
    threshold = config.health_threshold or 0
    reason = (
        f"{healthy} of {len(children)} child health checks healthy, at least {threshold} required"
    )
    return healthy >= threshold, reason


async def probe(
    config: HealthCheckConfig, timeouts: Timeouts = ROUTE53_TIMEOUTS, health_check_id: str = ""
) -> Observation:
    """One probe of an endpoint check (HTTP, HTTPS, *_STR_MATCH or TCP)."""
    try:
        return await _Probe(config, timeouts, health_check_id).run()
    except OSError as exc:
        return _failure(_os_error_text(exc, config))
    except Exception as exc:  # a probe must end in an observation, whatever the endpoint sent
        log.exception("health check %s: the probe failed", health_check_id)
        return _failure(f"The health checker could not complete the check ({exc!r}).")


class _ProbeFailure(Exception):
    """Ends a probe with ``Failure: <message>``."""


class _Probe:
    def __init__(self, config: HealthCheckConfig, timeouts: Timeouts, health_check_id: str):
        self.config = config
        self.timeouts = timeouts
        self.health_check_id = health_check_id
        self.checker_ip: str | None = None

    async def run(self) -> Observation:
        try:
            status = await self._run()
        except _ProbeFailure as exc:
            return _failure(str(exc), self.checker_ip)
        return Observation(True, "Success: " + status, _now(), self.checker_ip)

    async def _run(self) -> str:
        config = self.config
        address = config.ip_address or await self._resolve()
        connect_timeout = (
            self.timeouts.tcp_connect if config.type == "TCP" else self.timeouts.connect
        )
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, config.port, limit=MAX_RESPONSE_HEAD),
                connect_timeout,
            )
        except asyncio.TimeoutError:
            raise _ProbeFailure(
                "Connection timed out. The endpoint or the internet connection is down, or "
                "requests are being blocked by your firewall."
            ) from None
        except OSError as exc:
            raise _ProbeFailure(_os_error_text(exc, config)) from None
        with contextlib.suppress(OSError, TypeError, IndexError):
            self.checker_ip = writer.get_extra_info("sockname")[0]
        try:
            if config.type == "TCP":
                return "TCP connection established"
            return await self._http(reader, writer)
        finally:
            if writer.get_extra_info("ssl_object") is not None:
                writer.transport.abort()  # no TLS close_notify exchange to wait for
            else:
                writer.close()

    async def _resolve(self) -> str:
        name = self.config.fully_qualified_domain_name or ""
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(name, self.config.port, family=socket.AF_INET),
                self.timeouts.connect,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            reason = getattr(exc, "strerror", None) or "timed out"
            raise _ProbeFailure(f"DNS resolution failed: {name}: {reason}") from None
        if not infos:
            raise _ProbeFailure(f"DNS resolution failed: {name} has no IPv4 address")
        return infos[0][4][0]

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        config = self.config
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeouts.response
        if config.type in HTTPS_TYPES:
            sni = config.fully_qualified_domain_name if config.enable_sni else None
            try:
                await asyncio.wait_for(
                    writer.start_tls(_tls_context(), server_hostname=sni), _left(deadline)
                )
            except asyncio.TimeoutError:
                raise _ProbeFailure(self._no_status_text()) from None
            except ssl.SSLError as exc:
                raise _ProbeFailure(f"TLS handshake failed: {exc.reason or exc}") from None
        writer.write(self._request())
        try:
            await asyncio.wait_for(writer.drain(), _left(deadline))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _left(deadline))
        except asyncio.TimeoutError:
            raise _ProbeFailure(self._no_status_text()) from None
        except asyncio.IncompleteReadError as exc:
            if _STATUS_LINE.match(exc.partial):
                raise _ProbeFailure(
                    "The connection was closed before the response headers ended."
                ) from None
            raise _ProbeFailure(
                "The connection was closed before an HTTP status was received."
            ) from None
        except (asyncio.LimitOverrunError, ValueError):
            raise _ProbeFailure(
                f"The response head is longer than {MAX_RESPONSE_HEAD} bytes."
            ) from None
        code, reason, headers = _parse_head(head)
        status = f"HTTP Status Code {code}, {reason}" if reason else f"HTTP Status Code {code}"
        if not 200 <= code < 400:
            raise _ProbeFailure(status)
        if config.type in STRING_MATCH_TYPES:
            await self._search_body(reader, headers, status)
        return status

    async def _search_body(self, reader, headers: dict[bytes, bytes], status: str) -> None:
        needle = (self.config.search_string or "").encode()
        body = bytearray()

        async def collect() -> None:
            async for piece in _body_pieces(reader, headers):
                body.extend(piece)
                if needle in body[:SEARCH_WINDOW]:
                    return

        try:
            await asyncio.wait_for(collect(), self.timeouts.body)
        except asyncio.TimeoutError:
            raise _ProbeFailure(
                f"{status}. The response body was not received within "
                f"{_seconds(self.timeouts.body)} after the HTTP status."
            ) from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # a body cut short or badly framed: search what arrived
        if needle not in body[:SEARCH_WINDOW]:
            raise _ProbeFailure(
                f"{status}. The search string was not found in the first {SEARCH_WINDOW} bytes "
                "of the response body."
            )

    def _request(self) -> bytes:
        config = self.config
        path = config.resource_path or "/"
        if not path.startswith("/"):
            path = "/" + path
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {self.host_header()}",
            f"User-Agent: {USER_AGENT}"
            + (f" (ref {self.health_check_id})" if self.health_check_id else ""),
            "Accept: */*",
            "Connection: close",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")

    def host_header(self) -> str:
        config = self.config
        host = config.fully_qualified_domain_name or config.ip_address or ""
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        default_port = 443 if config.type in HTTPS_TYPES else 80
        return host if config.port == default_port else f"{host}:{config.port}"

    def _no_status_text(self) -> str:
        return (
            "The endpoint did not send an HTTP status and headers within "
            f"{_seconds(self.timeouts.response)} after the connection was established."
        )


async def _body_pieces(reader: asyncio.StreamReader, headers: dict[bytes, bytes]):
    """The decoded body in pieces (chunked, Content-Length or until the connection closes)."""
    wanted = SEARCH_WINDOW
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        while wanted > 0:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                return
            chunk = await reader.readexactly(size)
            await reader.readexactly(2)
            wanted -= len(chunk)
            yield chunk
        return
    length_text = headers.get(b"content-length")
    remaining = int(length_text) if length_text and length_text.strip().isdigit() else None
    while wanted > 0 and (remaining is None or remaining > 0):
        limit = wanted if remaining is None else min(wanted, remaining)
        piece = await reader.read(limit)
        if not piece:
            return
        wanted -= len(piece)
        if remaining is not None:
            remaining -= len(piece)
        yield piece


def _parse_head(head: bytes) -> tuple[int, str, dict[bytes, bytes]]:
    """(status code, reason phrase, headers by lower-case name) of a response head;
    ``_ProbeFailure`` when it is not HTTP/1.x or a header line is not RFC 7230's."""
    lines = head[:-4].split(b"\r\n")
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise _ProbeFailure("The response does not start with an HTTP/1.x status line.")
    code = int(match.group(3))
    reason = (match.group(4) or b"").decode("latin-1").strip()
    if not reason:
        with contextlib.suppress(ValueError):
            reason = http.HTTPStatus(code).phrase
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name) or not _HEADER_VALUE.fullmatch(value):
            raise _ProbeFailure(
                "The response headers are not in the format RFC 7230 section 3.2 defines."
            )
        headers[name.lower()] = value.strip()
    return code, reason, headers


def _tls_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # Route 53 does not validate certificates
    return context


def _os_error_text(exc: OSError, config: HealthCheckConfig) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"Connection refused. The endpoint is not accepting connections on port {config.port}."
        )
    return f"Connection failed: {exc.strerror or exc}."


def _failure(message: str, checker_ip: str | None = None) -> Observation:
    return Observation(False, "Failure: " + message, _now(), checker_ip)


def _left(deadline: float) -> float:
    return max(deadline - asyncio.get_running_loop().time(), 0.0)


def _seconds(value: float) -> str:
    return f"{value:g} second" + ("" if value == 1 else "s")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
