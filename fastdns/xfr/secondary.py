"""Secondary zones: fetched from their primaries, kept fresh on the SOA timers and on NOTIFY.

```toml
[secondary.zones."example.org"]
primaries = ["192.0.2.1", "192.0.2.2:5300"]   # asked in this order
key = "xfr.example."                          # TSIG key for the queries and transfers (optional)
```

For each zone a task runs the refresh cycle of RFC 1034 §4.3.5 and RFC 1996: ask a primary for
the SOA; when its serial is newer (RFC 1982), transfer -- IXFR from the serial held (RFC 1995),
falling back to AXFR (RFC 5936) when the primary cannot give an increment or the increment does
not apply -- compile, and hand the compiled zone to the server, which swaps it into the workers
like any other zone. Then wait REFRESH seconds (RETRY after a failure); a NOTIFY from a primary
(``notify``) starts a refresh at once. When no primary has answered for EXPIRE seconds the zone
stops being served.

Transfers are read into packed record sets (fastdns.xfr.inbound), not a dnspython object per
record, and an IXFR changes only the record sets it touches: the image of a large zone is
grafted rather than compiled again (fastdns.xfr.zonedata, issue 8). Each zone is also saved in
``<data_dir>`` (the whole zone after an AXFR, a journal entry after an IXFR), so a restart
serves the last copy at once -- unless it has expired since, judged by the copy's age -- while
the first refresh runs. Transfers, compiles and saves run in threads; a failed transfer or
compile changes nothing that is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
import dns.tsig

from fastdns._zcompile import TransferFormError
from fastdns.model import ZoneLoadError
from fastdns.xfr.config import NotifyTarget, SecondaryConfig, parse_secondary
from fastdns.xfr.inbound import TransferError, receive_transfer
from fastdns.xfr.service import serial_at_least
from fastdns.xfr.tsig import Keyring
from fastdns.xfr.zonedata import CompiledSecondary, SecondaryData

log = logging.getLogger("fastdns.xfr")

# SecondaryConfig and parse_secondary live in fastdns.xfr.config (the config file reads them).
__all__ = ["SecondaryConfig", "SecondaryZones", "parse_secondary"]

QUERY_TIMEOUT = 5.0  # seconds for a SOA query to a primary
TRANSFER_LIFETIME = 300.0  # seconds a whole transfer may take
# RFC 1912 §2.2 / common practice: bounds on what a primary's SOA may ask of us.
MIN_REFRESH = 1
MIN_RETRY = 1


# What a failed transfer from one primary raises (the next primary is tried).
TRANSFER_ERRORS = (OSError, EOFError, dns.exception.DNSException, TransferFormError)


@dataclass
class _State:
    config: SecondaryConfig
    data: SecondaryData | None = None
    last_success: float | None = None  # wall-clock time of the last successful refresh
    serving: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    # After a transfer: the record sets to save (None: the whole zone).
    unsaved: set | None = field(default_factory=set)

    @property
    def serial(self) -> int | None:
        return self.data.serial if self.data is not None else None

    def timers(self) -> tuple[int, int, int]:
        """(refresh, retry, expire) of the held SOA (RFC 1035 §3.3.13)."""
        refresh, retry, expire, _minimum = self.data.timers()
        return max(refresh, MIN_REFRESH), max(retry, MIN_RETRY), expire


class SecondaryZones:
    """The refresh tasks of every secondary zone. ``on_update(origin, compiled or None)`` runs
    on the event loop when a zone has new data (or expired: None)."""

    def __init__(
        self,
        configs: Mapping[dns.name.Name, SecondaryConfig],
        keyring: Keyring,
        on_update: Callable[[dns.name.Name, CompiledSecondary | None], None],
        data_dir: Path | None = None,
    ) -> None:
        self.keyring = keyring
        self.on_update = on_update
        self.data_dir = data_dir
        self.states = {origin: _State(config) for origin, config in configs.items()}

    # -- lifecycle

    def load_saved(self) -> dict[dns.name.Name, CompiledSecondary]:
        """The saved copies still within their expiry, compiled (at startup, before
        serving)."""
        served = {}
        if self.data_dir is None:
            return served
        for origin, state in self.states.items():
            try:
                data = SecondaryData.load(origin, self.data_dir)
            except (OSError, ValueError, dns.exception.DNSException) as exc:
                log.warning("secondary zone %s: saved copy unreadable: %s", origin, exc)
                continue
            if data is None:
                continue
            state.data = data
            state.last_success = data.saved_at(self.data_dir)
            if state.last_success is None or time.time() - state.last_success >= state.timers()[2]:
                continue
            try:
                served[origin] = data.compile_for_serving()
            except (ZoneLoadError, ValueError) as exc:
                log.warning("secondary zone %s: saved copy not served: %s", origin, exc)
                continue
            state.serving = True
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
                compiled = await loop.run_in_executor(None, self._refresh, state)
            except Exception as exc:  # every primary failed
                log.warning("secondary zone %s: refresh failed: %s", origin, exc)
                delay = state.timers()[1] if state.data is not None else MIN_RETRY * 5
                self._check_expiry(state)
            else:
                state.last_success = time.time()
                if compiled is None and not state.serving and state.data is not None:
                    # A saved copy that had expired is current again.
                    compiled = await loop.run_in_executor(None, self._compile, state)
                if compiled is not None:
                    state.serving = True
                    self.on_update(origin, compiled)
                await loop.run_in_executor(None, self._save, state)
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

    def _compile(self, state: _State) -> CompiledSecondary | None:
        """The held zone compiled, or None (logged) when it is not valid."""
        try:
            return state.data.compile_for_serving()
        except (ZoneLoadError, ValueError) as exc:
            errors = getattr(exc, "errors", None)
            log.error(
                "secondary zone %s serial %s is not valid, not served: %s",
                state.config.origin,
                state.serial,
                "; ".join(str(e) for e in errors[:5]) if errors else exc,
            )
            return None

    def _refresh(self, state: _State) -> CompiledSecondary | None:
        """One refresh against the primaries in turn (a thread): the zone compiled when it
        changed, else None. Raises when no primary could be asked."""
        failures = []
        for primary in state.config.primaries:
            try:
                if not self._refresh_from(state, primary):
                    return None
            except TRANSFER_ERRORS as exc:
                failures.append(f"{primary}: {exc or type(exc).__name__}")
                continue
            return self._compile(state)
        raise RuntimeError("; ".join(failures))

    def _tsig(self, state: _State) -> dns.tsig.Key | None:
        key = state.config.key
        if key is None:
            return None
        tsig = self.keyring.get(key)
        if tsig is None:
            raise dns.exception.DNSException(f"no TSIG key {key} in [tsig_keys]")
        return tsig

    def _refresh_from(self, state: _State, primary: NotifyTarget) -> bool:
        """Whether the zone changed: transferred from ``primary`` when its serial is newer."""
        origin = state.config.origin
        key = self._tsig(state)
        query = dns.message.make_query(origin, dns.rdatatype.SOA)
        if key is not None:
            query.use_tsig({key.name: key}, key.name, algorithm=key.algorithm)
        response = dns.query.udp(query, primary.host, timeout=QUERY_TIMEOUT, port=primary.port)
        soa = response.get_rrset(response.answer, origin, dns.rdataclass.IN, dns.rdatatype.SOA)
        if soa is None:
            raise dns.exception.DNSException(f"no SOA for {origin} in the answer")
        theirs = soa[0].serial
        ours = state.serial
        if ours is not None and serial_at_least(ours, theirs):
            return False  # confirmed: _save touches the saved copy, whose age starts again
        started = time.monotonic()
        if state.data is not None:
            try:
                kind = self._transfer(state, primary, serial=ours)
            except TRANSFER_ERRORS as exc:
                log.info("secondary zone %s: IXFR from %s failed (%s); AXFR", origin, primary, exc)
                kind = self._transfer(state, primary, serial=None)
        else:
            kind = self._transfer(state, primary, serial=None)
        log.info(
            "secondary zone %s: serial %s -> %s from %s (%s, %.0f ms)",
            origin, ours, state.serial, primary, kind, (time.monotonic() - started) * 1000,
        )  # fmt: skip
        return True

    def _transfer(self, state: _State, primary: NotifyTarget, serial: int | None) -> str:
        """IXFR from ``serial`` (AXFR when None) into the held zone, all or nothing; what
        kind of transfer it was."""
        origin = state.config.origin
        transfer = receive_transfer(
            primary.host, primary.port, origin, serial, self._tsig(state),
            timeout=QUERY_TIMEOUT, lifetime=TRANSFER_LIFETIME,
        )  # fmt: skip
        if transfer.differences is not None:
            changed = state.data.apply(transfer.differences)
            if state.unsaved is not None:
                state.unsaved.update(changed)
            return f"IXFR of {len(transfer.differences)} differences"
        if transfer.record_sets is None:
            raise TransferError(f"the primary has serial {transfer.serial}, not a newer one")
        state.data = SecondaryData(origin, transfer.record_sets)
        state.unsaved = None
        return f"AXFR of {transfer.records} records"

    def _save(self, state: _State) -> None:
        """Save what the last refresh changed (a thread)."""
        if self.data_dir is None or state.data is None:
            return
        unsaved, state.unsaved = state.unsaved, set()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if unsaved is None:
                state.data.save_whole(self.data_dir)
            elif unsaved:
                state.data.save_change(self.data_dir, unsaved)
            else:
                state.data.touch(self.data_dir)
        except OSError as exc:
            log.warning("secondary zone %s: cannot save it: %s", state.config.origin, exc)
            state.unsaved = None  # the journal may lack this change: save the whole next time
