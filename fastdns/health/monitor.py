"""The health monitor: probes every health check and keeps the shared health table current.

It runs in the supervisor, on the event loop::

    table = HealthTable()
    monitor = HealthMonitor(table, load_checks)   # load_checks: async () -> [(id, slot, config)]
    monitor.on_change(callback)                   # callback(id, healthy) on every status flip
    await monitor.start()                         # load the checks, write the table, start probing
    ...
    await monitor.reload()                        # after the API created, updated or deleted one
    monitor.request_reload()                      # the same, scheduled (ApiServer on_health_change)
    monitor.status(health_check_id)               # from any thread: HealthStatus or None
    await monitor.close()                         # stop probing (the table stays as it is)

Every endpoint check (HTTP, HTTPS, *_STR_MATCH, TCP) that is not disabled has its own task: one
probe (``fastdns.health.checker.probe``), then ``RequestInterval`` seconds from the end of that
probe to the start of the next, as Route 53 defines the interval. The results go through
Route 53's FailureThreshold rule (``ThresholdStatus``), then Disabled and Inverted
(``reported_status``); that reported status is what the table holds in the check's slot and what
``on_change`` callbacks are told. CALCULATED checks have no task: they are evaluated again
whenever one of their children's reported status changes (children may be calculated checks;
the store refuses cycles).

One checker, not many: Route 53 probes from several regions and calls an endpoint healthy when
more than 18% of its checkers do; this server has one checker, so a check's status is that
checker's status. Statuses are not persisted: after a restart every check is new again
(healthy, or unhealthy when inverted, until its probes say otherwise).

``time_scale`` multiplies every RequestInterval (tests run with 0.05: a 10 s check probes every
0.5 s); ``timeouts`` are the probe timeouts, Route 53's by default. The API still accepts only
10 or 30 seconds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from fastdns.health.checker import (
    ROUTE53_TIMEOUTS,
    Observation,
    ThresholdStatus,
    Timeouts,
    calculated_status,
    probe,
    reported_status,
)
from fastdns.health.config import HealthCheckConfig
from fastdns.health.table import HealthTable

__all__ = ["HealthMonitor", "HealthStatus", "LoadChecks", "StatusCallback"]

log = logging.getLogger("fastdns.health")

LoadChecks = Callable[[], Awaitable[list[tuple[str, int, HealthCheckConfig]]]]
StatusCallback = Callable[[str, bool], None]
MAX_CONCURRENT_PROBES = 256


@dataclass(frozen=True)
class HealthStatus:
    """What the monitor knows about one health check (an immutable snapshot)."""

    healthy: bool  # the status routing uses: the table's byte (Disabled and Inverted applied)
    measured: bool  # before Disabled and Inverted: the probes' (or the children's) verdict
    reason: str  # why: the last probe's status text, the children's count, "disabled"...
    observation: Observation | None = None  # the latest probe (endpoint checks)
    last_failure: Observation | None = None  # the latest failed probe


def _word(healthy: bool) -> str:
    return "healthy" if healthy else "unhealthy"


class _Check:
    """One health check's state on the event loop."""

    def __init__(self, health_check_id: str, slot: int, config: HealthCheckConfig):
        self.id = health_check_id
        self.slot = slot
        self.config = config
        self.threshold = ThresholdStatus(config.failure_threshold or 1)
        self.measured_reason = "no data yet: a new health check"
        self.observation: Observation | None = None
        self.last_failure: Observation | None = None
        self.task: asyncio.Task | None = None
        self.reported = reported_status(True, config)
        self.new = True  # its first status is being set: not a flip

    def reason(self) -> str:
        if self.config.disabled:
            return "disabled" + (", inverted" if self.config.inverted else "")
        return self.measured_reason + (", inverted" if self.config.inverted else "")

    def snapshot(self) -> HealthStatus:
        return HealthStatus(
            self.reported,
            self.threshold.healthy,
            self.reason(),
            self.observation,
            self.last_failure,
        )


class HealthMonitor:
    """Probe the health checks ``load_checks()`` returns and write their statuses to ``table``.

    ``load_checks``: an async callable returning ``(health check id, slot, HealthCheckConfig)``
    for every health check (``HealthCheckStore.monitor_entries`` run on the store thread).
    ``time_scale`` multiplies the request intervals; ``timeouts`` are the probe timeouts;
    at most ``max_concurrent_probes`` probes are in flight at once.
    """

    def __init__(
        self,
        table: HealthTable,
        load_checks: LoadChecks,
        time_scale: float = 1.0,
        timeouts: Timeouts = ROUTE53_TIMEOUTS,
        max_concurrent_probes: int = MAX_CONCURRENT_PROBES,
    ):
        self.table = table
        self.load_checks = load_checks
        self.time_scale = time_scale
        self.timeouts = timeouts
        self._checks: dict[str, _Check] = {}
        self._parents: dict[str, set[str]] = {}  # child id -> calculated checks that list it
        self._callbacks: list[StatusCallback] = []
        self._statuses: dict[str, HealthStatus] = {}
        self._statuses_lock = threading.Lock()
        self._reload_lock = asyncio.Lock()
        self._probe_slots = asyncio.Semaphore(max_concurrent_probes)
        self._settling: set[str] = set()  # checks whose flip is being passed to parents
        self._reload_wanted = False
        self._reload_task: asyncio.Task | None = None
        self._closed = False

    # -- the interface

    def on_change(self, callback: StatusCallback) -> None:
        """Call ``callback(health_check_id, healthy)`` on the event loop whenever a check's
        reported status flips (not for new or deleted checks). Exceptions are logged."""
        self._callbacks.append(callback)

    async def start(self) -> None:
        """Load every health check, write their initial statuses, start probing."""
        await self.reload()

    async def reload(self) -> None:
        """Load the health checks again: start the new ones, restart the changed ones (keeping
        their status), stop the deleted ones and free their slots. Checks whose settings did
        not change keep running undisturbed."""
        async with self._reload_lock:
            if self._closed:
                return
            entries = await self.load_checks()
            self._apply(entries)

    def request_reload(self) -> None:
        """Schedule ``reload()`` on the running loop and return at once: the API server's
        ``on_health_change`` hook. Requests that arrive while a reload runs are coalesced into
        one more reload; failures are logged."""
        self._reload_wanted = True
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.get_running_loop().create_task(self._reload_pending())

    async def _reload_pending(self) -> None:
        while self._reload_wanted and not self._closed:
            self._reload_wanted = False
            try:
                await self.reload()
            except Exception:
                log.exception("health checks: reload failed")

    def status(self, health_check_id: str) -> HealthStatus | None:
        """The check's current status; None if the monitor does not know it. Thread-safe (the
        API calls it from the store thread)."""
        with self._statuses_lock:
            return self._statuses.get(health_check_id)

    def statuses(self) -> dict[str, HealthStatus]:
        """Every check's status, by ID. Thread-safe."""
        with self._statuses_lock:
            return dict(self._statuses)

    async def close(self) -> None:
        """Stop every probe. The table keeps the last statuses."""
        self._closed = True
        tasks = [check.task for check in self._checks.values() if check.task is not None]
        if self._reload_task is not None:
            tasks.append(self._reload_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for check in self._checks.values():
            check.task = None

    # -- loading

    def _apply(self, entries: Iterable[tuple[str, int, HealthCheckConfig]]) -> None:
        wanted = {health_check_id: (slot, config) for health_check_id, slot, config in entries}
        for health_check_id in list(self._checks):
            if health_check_id not in wanted:
                self._remove(self._checks[health_check_id])
        changed: list[_Check] = []
        for health_check_id, (slot, config) in wanted.items():
            check = self._checks.get(health_check_id)
            if check is None:
                check = _Check(health_check_id, slot, config)
                self._checks[health_check_id] = check
                self.table.set(slot, check.reported)
                self._publish(check)
                self._start_probing(check)
                log.debug("health check %s: new, %s", check.id, _word(check.reported))
            elif check.slot != slot or check.config != config:
                self._reconfigure(check, slot, config)
                changed.append(check)
        self._parents = {}
        for check in self._checks.values():
            for child in check.config.children:
                self._parents.setdefault(child, set()).add(check.id)
        # Endpoint checks with new settings first (Inverted or Disabled may have changed what
        # they report), then every calculated check, children before parents.
        for check in changed:
            if not check.config.is_calculated:
                self._settle(check)
        for check in self._in_dependency_order():
            if check.config.is_calculated:
                self._evaluate_calculated(check)
        for check in self._checks.values():
            check.new = False
            self.table.set(check.slot, check.reported)  # also repairs a slot another check left

    def _remove(self, check: _Check) -> None:
        if check.task is not None:
            check.task.cancel()
            check.task = None
        del self._checks[check.id]
        self.table.release(check.slot)
        with self._statuses_lock:
            self._statuses.pop(check.id, None)
        log.debug("health check %s: deleted, slot %d freed", check.id, check.slot)

    def _reconfigure(self, check: _Check, slot: int, config: HealthCheckConfig) -> None:
        """New settings: keep the measured status, restart the probes."""
        if check.slot != slot:
            self.table.release(check.slot)
            check.slot = slot
            self.table.set(slot, check.reported)
        if check.task is not None:
            check.task.cancel()
            check.task = None
        check.config = config
        check.threshold = ThresholdStatus(config.failure_threshold or 1, check.threshold.healthy)
        self._start_probing(check)

    def _start_probing(self, check: _Check) -> None:
        if check.config.is_endpoint and not check.config.disabled and not self._closed:
            check.task = asyncio.get_running_loop().create_task(
                self._probe_loop(check), name=f"health check {check.id}"
            )

    def _in_dependency_order(self) -> list[_Check]:
        """Every check, children before the calculated checks that list them."""
        order: list[_Check] = []
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(check: _Check) -> None:
            if state.get(check.id):
                return  # done, or a cycle (the store refuses them): stop there
            state[check.id] = 1
            for child in check.config.children:
                if child in self._checks:
                    visit(self._checks[child])
            state[check.id] = 2
            order.append(check)

        for check in list(self._checks.values()):
            visit(check)
        return order

    # -- probing and statuses

    async def _probe_loop(self, check: _Check) -> None:
        config = check.config
        interval = (config.request_interval or 30) * self.time_scale
        while True:
            async with self._probe_slots:
                observation = await probe(config, self.timeouts, check.id)
            self._record(check, observation)
            await asyncio.sleep(interval)

    def _record(self, check: _Check, observation: Observation) -> None:
        check.observation = observation
        if not observation.success:
            check.last_failure = observation
        check.threshold.record(observation.success)
        check.measured_reason = observation.status
        self._settle(check)

    def _evaluate_calculated(self, check: _Check) -> None:
        if check.config.disabled:
            self._settle(check)
            return

        def child_healthy(child_id: str) -> bool | None:
            child = self._checks.get(child_id)
            return None if child is None else child.reported

        healthy, reason = calculated_status(check.config, child_healthy)
        check.threshold.healthy = healthy
        check.measured_reason = reason
        self._settle(check)

    def _settle(self, check: _Check) -> None:
        """Recompute the reported status; on a flip write the table, log, tell the callbacks
        and the calculated checks that list this one."""
        reported = reported_status(check.threshold.healthy, check.config)
        flipped = reported != check.reported
        check.reported = reported
        self._publish(check)
        if not flipped:
            return
        self.table.set(check.slot, reported)
        if check.new:
            return  # a new calculated check's first evaluation
        log.info(
            "health check %s: %s -> %s (%s)",
            check.id,
            _word(not reported),
            _word(reported),
            check.reason(),
        )
        for callback in list(self._callbacks):
            try:
                callback(check.id, reported)
            except Exception:
                log.exception("health check %s: status callback failed", check.id)
        self._settling.add(check.id)
        try:
            for parent_id in sorted(self._parents.get(check.id, ())):
                parent = self._checks.get(parent_id)
                if parent is not None and parent_id not in self._settling:
                    self._evaluate_calculated(parent)
        finally:
            self._settling.discard(check.id)

    def _publish(self, check: _Check) -> None:
        snapshot = check.snapshot()
        with self._statuses_lock:
            self._statuses[check.id] = snapshot
