"""The management API's HTTP/1.1 server: requests in, SigV4 checked, operations run in order.

Every request must be signed with AWS Signature Version 4 by one of the configured access keys
(``fastdns.route53.sigv4``); anything else gets the AWS error shape and changes nothing. The
operations run one at a time on one thread (``store_executor``), so SQLite sees a single writer
and the event loop never blocks on disk. Keep-alive connections, ``Content-Length`` bodies only
(SDKs do not send chunked requests), limits on head and body size.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import uuid
from collections.abc import Callable, Mapping

from fastdns.config import ListenAddress
from fastdns.route53.errors import ApiError, error_xml
from fastdns.route53.service import Response, Route53Service
from fastdns.route53.sigv4 import AuthError, HttpRequest, normalized_path, verify

__all__ = ["ApiServer"]

log = logging.getLogger("fastdns.api")

MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024
IDLE_TIMEOUT = 60.0  # seconds a keep-alive connection may wait for its next request
READ_TIMEOUT = 30.0  # seconds to receive a request once it has started
_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


class _BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ApiServer:
    """Serve ``service`` on ``address``. ``on_change(zone_id, change_id)`` is called on the event
    loop after an operation changed what a zone serves, ``on_health_change()`` after one created,
    updated or deleted a health check."""

    def __init__(
        self,
        address: ListenAddress,
        service: Route53Service,
        secrets: Mapping[str, str],
        store_executor: concurrent.futures.Executor,
        on_change: Callable[[str, str | None], None],
        on_health_change: Callable[[], None] = lambda: None,
    ):
        self.address = address
        self.service = service
        self.secrets = dict(secrets)
        self.executor = store_executor
        self.on_change = on_change
        self.on_health_change = on_health_change
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Bind and listen; ``OSError`` if the address cannot be bound."""
        self._server = await asyncio.start_server(
            self._connection,
            self.address.host,
            self.address.port,
            family=self.address.family,
            reuse_address=True,
            limit=MAX_HEAD,
        )
        log.info("Route 53 API at http://%s/", self.address)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
                except (asyncio.IncompleteReadError, asyncio.TimeoutError):
                    return
                except asyncio.LimitOverrunError:
                    await self._send_plain(writer, 400, "request head too large")
                    return
                try:
                    request = await self._read_request(head, reader)
                except _BadRequest as exc:
                    await self._send_plain(writer, exc.status, str(exc))
                    return
                response, request_id = await self._respond(request)
                keep_alive = _header(request.headers, "connection").lower() != "close"
                await self._send(writer, response, request_id, request.method, keep_alive)
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    async def _read_request(self, head: bytes, reader: asyncio.StreamReader) -> HttpRequest:
        lines = head[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, "malformed request line")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _BadRequest(400, "malformed header line")
            headers.append((name, value.strip()))
        if _header(headers, "transfer-encoding"):
            raise _BadRequest(411, "send the body with Content-Length")
        length_text = _header(headers, "content-length") or "0"
        if not length_text.isdigit():
            raise _BadRequest(400, "bad Content-Length")
        length = int(length_text)
        if length > MAX_BODY:
            raise _BadRequest(413, f"body larger than {MAX_BODY} bytes")
        body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT) if length else b""
        return HttpRequest(parts[0], parts[1], tuple(headers), body)

    async def _respond(self, request: HttpRequest) -> tuple[Response, str]:
        request_id = str(uuid.uuid4())
        raw_path, _, query = request.target.partition("?")
        path = normalized_path(raw_path)  # what was signed: /a/../b signs as /b
        try:
            key_id = verify(request, self.secrets)
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(
                self.executor, self.service.handle, request.method, path, query, request.body
            )
        except AuthError as exc:
            log.warning("API %s %s refused: %s", request.method, path, exc.code)
            error = ApiError(exc.code, exc.message, exc.status)
            return Response(error.status, error_xml(error, request_id)), request_id
        except ApiError as exc:
            log.info("API %s %s: %s %s", request.method, path, exc.code, exc.message)
            return Response(exc.status, error_xml(exc, request_id)), request_id
        except Exception:
            log.exception("API %s %s failed", request.method, path)
            error = ApiError(
                "InternalFailure", "The request failed for an internal reason", 500, sender=False
            )
            return Response(500, error_xml(error, request_id)), request_id
        # Reads (GetChange polled until INSYNC, listings) at debug level; every change at info.
        level = logging.DEBUG if request.method == "GET" else logging.INFO
        log.log(level, "API %s %s by %s: %d", request.method, path, key_id, response.status)
        if response.changed_zone is not None:
            self.on_change(response.changed_zone, response.change_id)
        if response.changed_health_checks:
            self.on_health_change()
        return response, request_id

    async def _send(
        self, writer, response: Response, request_id: str, method: str, keep_alive: bool
    ) -> None:
        headers = {
            "Content-Type": "text/xml",
            "Content-Length": str(len(response.body)),
            "x-amz-request-id": request_id,
            **response.headers,
        }
        if not keep_alive:
            headers["Connection"] = "close"
        reason = _REASONS.get(response.status, "Error")
        head = f"HTTP/1.1 {response.status} {reason}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        writer.write((head + "\r\n").encode("latin-1"))
        if method != "HEAD":
            writer.write(response.body)
        await asyncio.wait_for(writer.drain(), READ_TIMEOUT)

    async def _send_plain(self, writer, status: int, message: str) -> None:
        body = (message + "\n").encode()
        writer.write(
            (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            + body
        )
        await asyncio.wait_for(writer.drain(), READ_TIMEOUT)


def _header(headers, name: str) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value
    return ""
