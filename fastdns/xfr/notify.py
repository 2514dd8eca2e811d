"""NOTIFY (RFC 1996) to a zone's secondaries when its serial changes, retried until acked.

``Notifier.zones_served(zones)`` is called each time the workers serve a new snapshot (and
once at startup, so secondaries catch up after a restart): for every zone whose serial differs
from the last one notified and whose ``TransferPolicy`` names ``notify`` targets, each target
gets a NOTIFY over UDP (RFC 1996 §3.1-3.7: opcode NOTIFY, AA, QTYPE SOA, the new SOA in the
answer section), TSIG-signed with ``notify_key`` when set. A target that does not answer
within 1 s is asked again, then after 2, 4, 8 and 16 s more (RFC 1996 §3.6: retransmit until
a response or a limit); a newer serial replaces the retries for the older one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Mapping

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset

from fastdns.model import Zone
from fastdns.xfr.axfr import soa_rrset
from fastdns.xfr.config import NotifyTarget, TransferConfig
from fastdns.xfr.tsig import Keyring

log = logging.getLogger("fastdns.xfr")

__all__ = ["Notifier"]

# Seconds to wait for an answer to each try: 5 tries, given up after 31 s.
RETRY_INTERVALS = (1.0, 2.0, 4.0, 8.0, 16.0)


class _NotifyProtocol(asyncio.DatagramProtocol):
    """Matches answers to pending NOTIFYs by (ID, address, port)."""

    def __init__(self, pending: dict[tuple[int, str, int], asyncio.Future]) -> None:
        self.pending = pending

    def datagram_received(self, data: bytes, addr) -> None:
        if len(data) < 12:
            return
        try:
            host = str(ipaddress.ip_address(addr[0].split("%", 1)[0]))
        except ValueError:
            return
        future = self.pending.get((int.from_bytes(data[:2], "big"), host, addr[1]))
        if future is not None and not future.done():
            future.set_result(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("NOTIFY socket: %s", exc)


class Notifier:
    """Sends NOTIFY for zones whose serial changed; ``close`` stops every retry."""

    def __init__(
        self,
        transfer: TransferConfig,
        keyring: Keyring,
        intervals: tuple[float, ...] = RETRY_INTERVALS,
    ) -> None:
        self.transfer = transfer
        self.keyring = keyring
        self.intervals = intervals
        self._notified: dict[dns.name.Name, int] = {}
        self._tasks: dict[tuple[dns.name.Name, NotifyTarget], asyncio.Task] = {}
        self._pending: dict[tuple[int, str, int], asyncio.Future] = {}
        self._transports: dict[int, asyncio.DatagramTransport] = {}

    def zones_served(self, zones: Mapping[dns.name.Name, Zone]) -> None:
        """The workers now serve ``zones``: NOTIFY the secondaries of each changed one."""
        if not self.transfer.default.notify and not self.transfer.zones:
            self._notified.clear()  # nothing to notify (no walk of 100,000 zones each time)
            return
        for origin, zone in zones.items():
            policy = self.transfer.for_zone(origin)
            if not policy.notify:
                continue
            try:
                soa = soa_rrset(zone)
            except ValueError:
                continue
            serial = soa[0].serial
            if self._notified.get(origin) == serial:
                continue
            self._notified[origin] = serial
            for target in policy.notify:
                task = self._tasks.pop((origin, target), None)
                if task is not None:
                    task.cancel()
                self._tasks[(origin, target)] = asyncio.get_running_loop().create_task(
                    self._notify(soa, target, policy.notify_key)
                )
        for origin in set(self._notified) - set(zones):
            del self._notified[origin]

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()

    async def _transport(self, family: int) -> asyncio.DatagramTransport:
        transport = self._transports.get(family)
        if transport is None:
            loop = asyncio.get_running_loop()
            local = ("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0)
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: _NotifyProtocol(self._pending), local_addr=local, family=family
            )
            self._transports[family] = transport
        return transport

    async def _notify(
        self, soa: dns.rrset.RRset, target: NotifyTarget, key_name: dns.name.Name | None
    ) -> None:
        origin, serial = soa.name, soa[0].serial
        message = dns.message.make_query(origin, dns.rdatatype.SOA)
        message.flags = dns.flags.AA  # RFC 1996 §3.7; no RD
        message.set_opcode(dns.opcode.NOTIFY)
        message.answer.append(soa)
        key = self.keyring.get(key_name)
        if key is not None:
            message.use_tsig(key)
        family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
        started = time.monotonic()
        try:
            transport = await self._transport(family)
            for attempt, interval in enumerate(self.intervals, 1):
                wire = message.to_wire()  # re-signed each time: a fresh TSIG time
                pending = (message.id, target.host, target.port)
                future = asyncio.get_running_loop().create_future()
                self._pending[pending] = future
                try:
                    transport.sendto(wire, (target.host, target.port))
                    reply = await asyncio.wait_for(future, interval)
                except asyncio.TimeoutError:
                    continue
                finally:
                    self._pending.pop(pending, None)
                if self._acknowledged(reply, message, key, target, origin):
                    log.info(
                        "NOTIFY of zone %s serial %d to %s acknowledged in %.0f ms (try %d)",
                        origin,
                        serial,
                        target,
                        (time.monotonic() - started) * 1000,
                        attempt,
                    )
                return
            log.warning(
                "NOTIFY of zone %s serial %d to %s: no answer after %d tries",
                origin,
                serial,
                target,
                len(self.intervals),
            )
        except OSError as exc:
            log.warning("NOTIFY of zone %s to %s failed: %s", origin, target, exc)

    @staticmethod
    def _acknowledged(reply: bytes, message, key, target, origin) -> bool:
        try:
            response = dns.message.from_wire(
                reply, keyring=key if key is not None else False, request_mac=message.mac
            )
        except Exception as exc:
            log.warning("NOTIFY of zone %s: bad answer from %s: %s", origin, target, exc)
            return False
        if response.opcode() != dns.opcode.NOTIFY or response.rcode() != dns.rcode.NOERROR:
            log.warning(
                "NOTIFY of zone %s: %s answered %s",
                origin,
                target,
                dns.rcode.to_text(response.rcode()),
            )
            return False
        return True
