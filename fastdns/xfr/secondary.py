"""Secondary zones: fetched from their primaries, kept fresh on the SOA timers and on NOTIFY.

```toml
[secondary.zones."example.org"]
primaries = ["192.0.2.1", "192.0.2.2:5300"]   # asked in this order
key = "xfr.example."                          # TSIG key for the queries and transfers (optional)
```

For each zone a task runs the refresh cycle of RFC 1034 §4.3.5 and RFC 1996: ask a primary for
the SOA; when its serial is newer (RFC 1982), transfer -- IXFR from the serial held (RFC 1995),
falling back to AXFR (RFC 5936) when the primary cannot give an increment -- and hand the zone to
the server, which compiles it and swaps it into the workers like any other zone. Then wait
REFRESH seconds (RETRY after a failure); a NOTIFY from a primary (``notify``) starts a refresh at
once. When no primary has answered for EXPIRE seconds the zone stops being served.

Each transferred zone is also written to ``<data_dir>/<origin>zone`` (master-file format), so a
restart serves the last copy at once -- unless it has expired since, judged by the file's age --
while the first refresh runs.

Transfers run in threads (dnspython's blocking ``dns.query.inbound_xfr``, which applies an IXFR
to the held ``dns.zone.Zone`` in one transaction: a failed transfer changes nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.xfr
import dns.zone

from fastdns.model import RecordSet, SourceLocation, Zone
from fastdns.validate import validate_zone
from fastdns.xfr.config import NotifyTarget, SecondaryConfig, parse_secondary
from fastdns.xfr.service import serial_at_least
from fastdns.xfr.tsig import Keyring

log = logging.getLogger("fastdns.xfr")

# SecondaryConfig and parse_secondary live in fastdns.xfr.config (the config file reads them).
__all__ = ["SecondaryConfig", "SecondaryZones", "parse_secondary"]

QUERY_TIMEOUT = 5.0  # seconds for a SOA query to a primary
TRANSFER_LIFETIME = 300.0  # seconds a whole transfer may take
# RFC 1912 §2.2 / common practice: bounds on what a primary's SOA may ask of us.
MIN_REFRESH = 1
MIN_RETRY = 1


def model_from_dnspython(zone: dns.zone.Zone, source: str) -> Zone:
    """A transferred zone as the server's model (every record set at its own owner)."""
    model = Zone(zone.origin, source=source)
    where = SourceLocation(source, 0)
    for name, rdataset in zone.iterate_rdatasets():
        owner = name if name.is_absolute() else name.derelativize(zone.origin)
        model.add(RecordSet(owner, rdataset.rdtype, rdataset.ttl, tuple(rdataset), where))
    return model


@dataclass
class _State:
    config: SecondaryConfig
    zone: dns.zone.Zone | None = None
    last_success: float | None = None  # wall-clock time of the last successful refresh
    serving: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None

    @property
    def serial(self) -> int | None:
        if self.zone is None:
            return None
        return self.zone.get_soa().serial

    def timers(self) -> tuple[int, int, int]:
        """(refresh, retry, expire) of the held SOA (RFC 1035 §3.3.13)."""
        soa = self.zone.get_soa()
        return max(soa.refresh, MIN_REFRESH), max(soa.retry, MIN_RETRY), soa.expire


class SecondaryZones:
    """The refresh tasks of every secondary zone. ``on_update(origin, model or None)`` runs on
    the event loop when a zone has new data (or expired: None)."""

    def __init__(
        self,
        configs: Mapping[dns.name.Name, SecondaryConfig],
        keyring: Keyring,
        on_update: Callable[[dns.name.Name, Zone | None], None],
        data_dir: Path | None = None,
    ) -> None:
        self.keyring = keyring
        self.on_update = on_update
        self.data_dir = data_dir
        self.states = {origin: _State(config) for origin, config in configs.items()}

    # -- lifecycle

    def load_saved(self) -> dict[dns.name.Name, Zone]:
        """The saved copies still within their expiry, as models (at startup, before serving)."""
        served = {}
        for origin, state in self.states.items():
            path = self._path(origin)
            if path is None or not path.exists():
                continue
            try:
                zone = dns.zone.from_file(str(path), origin, relativize=False)
            except (OSError, dns.exception.DNSException) as exc:
                log.warning("secondary zone %s: saved copy %s unreadable: %s", origin, path, exc)
                continue
            state.zone = zone
            state.last_success = path.stat().st_mtime
            if time.time() - state.last_success < state.timers()[2]:
                state.serving = True
                served[origin] = model_from_dnspython(zone, f"secondary copy {path}")
        return served

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for state in self.states.values():
            state.task = loop.create_task(self._run(state), name=f"secondary {state.config.origin}")

    async def close(self) -> None:
        tasks = [s.task for s in self.states.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def notify(self, origin: dns.name.Name, peer: str, key: dns.name.Name | None) -> bool:
        """A NOTIFY for ``origin`` from ``peer`` (signed with ``key``): start a refresh now if
        it came from one of the zone's primaries (RFC 1996 §3.10) with the zone's key. Whether
        it was accepted."""
        state = self.states.get(origin.canonicalize())
        if state is None:
            return False
        config = state.config
        if peer not in {p.host for p in config.primaries}:
            log.warning("NOTIFY for %s from %s: not one of its primaries", origin, peer)
            return False
        if config.key is not None and key != config.key:
            log.warning("NOTIFY for %s from %s: not signed with key %s", origin, peer, config.key)
            return False
        log.info("NOTIFY for %s from %s: refreshing", origin, peer)
        state.wake.set()
        return True

    # -- the refresh cycle

    async def _run(self, state: _State) -> None:
        loop = asyncio.get_running_loop()
        origin = state.config.origin
        while True:
            state.wake.clear()
            try:
                changed = await loop.run_in_executor(None, self._refresh, state)
            except Exception as exc:  # every primary failed
                log.warning("secondary zone %s: refresh failed: %s", origin, exc)
                delay = state.timers()[1] if state.zone is not None else MIN_RETRY * 5
                self._check_expiry(state)
            else:
                state.last_success = time.time()
                if changed:
                    self._publish(state)
                elif not state.serving and state.zone is not None:
                    self._publish(state)  # a saved copy that had expired is current again
                delay = state.timers()[0]
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(state.wake.wait(), delay)

    def _check_expiry(self, state: _State) -> None:
        if not state.serving or state.last_success is None:
            return
        expire = state.timers()[2]
        if time.time() - state.last_success >= expire:
            log.error(
                "secondary zone %s: no primary answered for %d s (SOA EXPIRE): not served",
                state.config.origin,
                expire,
            )
            state.serving = False
            self.on_update(state.config.origin, None)

    def _publish(self, state: _State) -> None:
        origin = state.config.origin
        model = model_from_dnspython(state.zone, f"secondary zone {origin} serial {state.serial}")
        errors = validate_zone(model)
        if errors:
            log.error(
                "secondary zone %s serial %s is not valid, not served: %s",
                origin,
                state.serial,
                "; ".join(str(e) for e in errors[:5]),
            )
            return
        state.serving = True
        self.on_update(origin, model)

    def _refresh(self, state: _State) -> bool:
        """One refresh against the primaries in turn (a thread); whether the zone changed.
        Raises when no primary could be asked."""
        failures = []
        for primary in state.config.primaries:
            try:
                return self._refresh_from(state, primary)
            except (OSError, EOFError, dns.exception.DNSException, dns.xfr.TransferError) as exc:
                failures.append(f"{primary}: {exc or type(exc).__name__}")
        raise RuntimeError("; ".join(failures))

    def _tsig(self, state: _State) -> dict:
        key = state.config.key
        if key is None:
            return {}
        tsig = self.keyring.get(key)
        if tsig is None:
            raise dns.exception.DNSException(f"no TSIG key {key} in [tsig_keys]")
        return {"keyring": {tsig.name: tsig}, "keyname": tsig.name, "keyalgorithm": tsig.algorithm}

    def _refresh_from(self, state: _State, primary: NotifyTarget) -> bool:
        origin = state.config.origin
        tsig = self._tsig(state)
        query = dns.message.make_query(origin, dns.rdatatype.SOA)
        if tsig:
            query.use_tsig(tsig["keyring"], tsig["keyname"], algorithm=tsig["keyalgorithm"])
        response = dns.query.udp(query, primary.host, timeout=QUERY_TIMEOUT, port=primary.port)
        soa = response.get_rrset(response.answer, origin, dns.rdataclass.IN, dns.rdatatype.SOA)
        if soa is None:
            raise dns.exception.DNSException(f"no SOA for {origin} in the answer")
        theirs = soa[0].serial
        ours = state.serial
        if ours is not None and serial_at_least(ours, theirs):
            return False
        if state.zone is not None:
            try:
                self._transfer(state, primary, serial=ours)
            except (dns.exception.DNSException, dns.xfr.TransferError, EOFError) as exc:
                log.info("secondary zone %s: IXFR from %s failed (%s); AXFR", origin, primary, exc)
                self._transfer(state, primary, serial=None)
        else:
            self._transfer(state, primary, serial=None)
        log.info("secondary zone %s: serial %s -> %s from %s", origin, ours, state.serial, primary)
        self._save(state)
        return True

    def _transfer(self, state: _State, primary: NotifyTarget, serial: int | None) -> None:
        """IXFR from ``serial`` (AXFR when None) into the held zone, in one transaction."""
        origin = state.config.origin
        zone = state.zone if serial is not None else dns.zone.Zone(origin, relativize=False)
        query, _ = dns.xfr.make_query(zone, serial=serial, **self._tsig(state))
        dns.query.inbound_xfr(
            primary.host, zone, query, port=primary.port, timeout=QUERY_TIMEOUT,
            lifetime=TRANSFER_LIFETIME,
        )  # fmt: skip
        if zone.get_soa() is None:
            raise dns.exception.DNSException("the transfer brought no SOA")
        state.zone = zone

    def _path(self, origin: dns.name.Name) -> Path | None:
        if self.data_dir is None:
            return None
        return self.data_dir / f"{origin.to_text()}zone"

    def _save(self, state: _State) -> None:
        path = self._path(state.config.origin)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            state.zone.to_file(str(temporary), relativize=False)
            os.replace(temporary, path)
        except OSError as exc:
            log.warning("secondary zone %s: cannot save %s: %s", state.config.origin, path, exc)
