"""Health checks in the state database: their settings, versions, caller references and slots.

``HealthCheckStore(store)`` works on the ``fastdns.store.Store``'s SQLite connection and
transactions, so a health check change and a record set change never interleave; like the
``Store``, its methods block and the server calls them from its one store thread. The tables
(``SCHEMA``) are created with the store's own.

A health check row keeps its ``HealthCheckConfig`` as JSON in the API's shape
(``HealthCheckConfig.to_api()``), its ``HealthCheckVersion`` (1 at creation, +1 per update) and
its *slot*: its byte in the shared health table (``fastdns.health.table``), the smallest free
one at creation, freed at deletion.

Route 53's rules kept here (API reference, CreateHealthCheck ``CallerReference``): the same
CallerReference and settings as an existing check return that check; the same CallerReference
with other settings, or the CallerReference of a deleted check, is HealthCheckAlreadyExists (409).
Caller references of deleted checks are kept for good (Route 53 forgets them "after a number of
days").

Deleting a health check that a record set (``HealthCheckId``) or a calculated check
(``ChildHealthChecks``) refers to is refused with HealthCheckInUse. This is a choice: Route 53
documented exactly that error for it once, and now documents that it "does not prevent you from
deleting a health check" and that the future status of such records "can't be predicted"
(API reference, DeleteHealthCheck). Refusing keeps every reference pointing at a live slot.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastdns.health.config import HealthCheckConfig
from fastdns.health.table import DEFAULT_CAPACITY
from fastdns.route53.errors import ApiError, InvalidInput

if TYPE_CHECKING:
    from fastdns.store import Store

__all__ = [
    "SCHEMA",
    "HealthCheck",
    "HealthCheckStore",
    "no_such_health_check",
    "require_health_check",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS health_checks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    caller_reference TEXT NOT NULL UNIQUE,
    slot INTEGER NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS health_check_references (
    caller_reference TEXT PRIMARY KEY,
    health_check_id TEXT NOT NULL
) WITHOUT ROWID;
"""

_SELECT = "SELECT id, caller_reference, version, slot, created_at, config FROM health_checks"


@dataclass(frozen=True)
class HealthCheck:
    id: str  # Route 53 style: a lower-case UUID ("abcdef11-2222-3333-4444-555555fedcba")
    caller_reference: str
    version: int  # HealthCheckVersion
    slot: int  # its byte in the health table
    created_at: str  # ISO 8601 UTC
    config: HealthCheckConfig


def no_such_health_check(health_check_id: str) -> ApiError:
    return ApiError(
        "NoSuchHealthCheck", f"No health check exists with the ID {health_check_id}", 404
    )


def require_health_check(db, health_check_id: str) -> None:
    """``NoSuchHealthCheck`` unless ``health_check_id`` exists (``db``: the store's
    connection; used for tags)."""
    if db.execute("SELECT 1 FROM health_checks WHERE id=?", (health_check_id,)).fetchone() is None:
        raise no_such_health_check(health_check_id)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _row(row) -> HealthCheck:
    health_check_id, reference, version, slot, created, config = row
    return HealthCheck(
        health_check_id,
        reference,
        version,
        slot,
        created,
        HealthCheckConfig.from_api(json.loads(config)),
    )


def _config_json(config: HealthCheckConfig) -> str:
    return json.dumps(config.to_api(), separators=(",", ":"))


class HealthCheckStore:
    """The health checks of ``store`` (whose connection and transactions it uses);
    ``capacity``: the number of slots (the health table's size)."""

    def __init__(self, store: Store, capacity: int = DEFAULT_CAPACITY):
        self.store = store
        self.capacity = capacity

    @property
    def db(self):
        return self.store.db

    # -- for the compiler, the monitor and the change batches

    def health_check_exists(self, health_check_id: str) -> bool:
        """True if a health check has this ID (``apply_change_batch``'s callable)."""
        row = self.db.execute("SELECT 1 FROM health_checks WHERE id=?", (health_check_id,))
        return row.fetchone() is not None

    def health_check_slot(self, health_check_id: str) -> int | None:
        """The health table slot of a health check; None if no check has this ID (a record set
        written by another tool: treat it as having no health check)."""
        row = self.db.execute(
            "SELECT slot FROM health_checks WHERE id=?", (health_check_id,)
        ).fetchone()
        return None if row is None else row[0]

    def health_check_slots(self) -> dict[str, int]:
        """Every health check's slot, by ID (one query, for compiling many record sets)."""
        return dict(self.db.execute("SELECT id, slot FROM health_checks"))

    def all_health_checks(self) -> list[HealthCheck]:
        """Every health check, oldest first."""
        return [_row(row) for row in self.db.execute(_SELECT + " ORDER BY seq")]

    def monitor_entries(self) -> list[tuple[str, int, HealthCheckConfig]]:
        """(id, slot, config) of every health check: what ``HealthMonitor``'s ``load_checks``
        returns."""
        return [(c.id, c.slot, c.config) for c in self.all_health_checks()]

    # -- the API's operations

    def create(self, caller_reference: str, config: HealthCheckConfig) -> tuple[HealthCheck, bool]:
        """A new health check, or the existing one made with the same caller reference and the
        same settings; (check, True if it was created now). ``ApiError``
        HealthCheckAlreadyExists, TooManyHealthChecks, InvalidInput (unknown children)."""
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT health_check_id FROM health_check_references WHERE caller_reference=?",
                (caller_reference,),
            ).fetchone()
            if row is not None:
                existing = db.execute(_SELECT + " WHERE id=?", (row[0],)).fetchone()
                if existing is not None and _row(existing).config == config:
                    return _row(existing), False
                why = "with other settings" if existing is not None else "and deleted since"
                raise ApiError(
                    "HealthCheckAlreadyExists",
                    "A health check has already been created with the specified caller "
                    f"reference: {caller_reference} ({why})",
                    409,
                )
            self._check_children(None, config)
            slot = self._free_slot()
            health_check_id = str(uuid.uuid4())
            db.execute(
                "INSERT INTO health_checks (id, caller_reference, slot, version, created_at, "
                "config) VALUES (?, ?, ?, 1, ?, ?)",
                (health_check_id, caller_reference, slot, _now(), _config_json(config)),
            )
            db.execute(
                "INSERT INTO health_check_references VALUES (?, ?)",
                (caller_reference, health_check_id),
            )
        return self.get(health_check_id), True

    def get(self, health_check_id: str) -> HealthCheck:
        row = self.db.execute(_SELECT + " WHERE id=?", (health_check_id,)).fetchone()
        if row is None:
            raise no_such_health_check(health_check_id)
        return _row(row)

    def list_health_checks(
        self, marker: str | None, max_items: int
    ) -> tuple[list[HealthCheck], str | None]:
        """ListHealthChecks: checks in creation order from the one with ID ``marker``; the page
        and the ID that starts the next one (None at the end)."""
        start = 0
        if marker:
            row = self.db.execute("SELECT seq FROM health_checks WHERE id=?", (marker,)).fetchone()
            if row is None:
                raise InvalidInput(f"Invalid marker: {marker}")
            start = row[0]
        rows = self.db.execute(
            _SELECT + " WHERE seq>=? ORDER BY seq LIMIT ?", (start, max_items + 1)
        ).fetchall()
        checks = [_row(row) for row in rows]
        if len(checks) > max_items:
            return checks[:max_items], checks[max_items].id
        return checks, None

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM health_checks").fetchone()[0]

    def update(
        self,
        health_check_id: str,
        expected_version: int | None,
        change: Callable[[HealthCheckConfig], HealthCheckConfig],
    ) -> HealthCheck:
        """UpdateHealthCheck: ``change`` the config in one transaction, version + 1.
        HealthCheckVersionMismatch (409) when ``expected_version`` is given and is not the
        current version; ``change``'s ``InvalidInput`` passes through."""
        with self.store.transaction() as db:
            current = self.get(health_check_id)
            if expected_version is not None and expected_version != current.version:
                raise ApiError(
                    "HealthCheckVersionMismatch",
                    f"The value of HealthCheckVersion in the request ({expected_version}) doesn't "
                    f"match the value of HealthCheckVersion in the health check "
                    f"({current.version})",
                    409,
                )
            config = change(current.config)
            self._check_children(health_check_id, config)
            db.execute(
                "UPDATE health_checks SET config=?, version=version+1 WHERE id=?",
                (_config_json(config), health_check_id),
            )
        return self.get(health_check_id)

    def delete(self, health_check_id: str) -> HealthCheck:
        """DeleteHealthCheck; HealthCheckInUse while a record set or a calculated check refers
        to it. Its tags go with it; its caller reference stays taken. The deleted check."""
        with self.store.transaction() as db:
            check = self.get(health_check_id)
            user = db.execute(
                "SELECT z.name, r.data FROM record_sets r JOIN hosted_zones z ON z.id = r.zone_id "
                "WHERE json_extract(r.data, '$.HealthCheckId') = ? LIMIT 1",
                (health_check_id,),
            ).fetchone()
            if user is not None:
                zone, data = user[0], json.loads(user[1])
                where = f"[name='{data['Name']}', type='{data['Type']}'"
                if data.get("SetIdentifier"):
                    where += f", set-identifier='{data['SetIdentifier']}'"
                raise ApiError(
                    "HealthCheckInUse",
                    f"The health check {health_check_id} is used by the resource record set "
                    f"{where}] in the hosted zone {zone}; remove it from the record set first",
                    400,
                )
            parent = db.execute(
                "SELECT h.id FROM health_checks h, json_each(h.config, '$.ChildHealthChecks') c "
                "WHERE c.value = ? LIMIT 1",
                (health_check_id,),
            ).fetchone()
            if parent is not None:
                raise ApiError(
                    "HealthCheckInUse",
                    f"The health check {health_check_id} is a child of the calculated health "
                    f"check {parent[0]}; remove it from ChildHealthChecks first",
                    400,
                )
            db.execute("DELETE FROM health_checks WHERE id=?", (health_check_id,))
            db.execute(
                "DELETE FROM tags WHERE resource_type='healthcheck' AND resource_id=?",
                (health_check_id,),
            )
        return check

    # -- helpers (inside a transaction)

    def _free_slot(self) -> int:
        slot = self.db.execute(
            "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM health_checks WHERE slot = 0) THEN 0 "
            "ELSE (SELECT min(h.slot) + 1 FROM health_checks h WHERE NOT EXISTS "
            "(SELECT 1 FROM health_checks n WHERE n.slot = h.slot + 1)) END"
        ).fetchone()[0]
        if slot >= self.capacity:
            raise ApiError(
                "TooManyHealthChecks",
                f"This health check can't be created: this server has room for {self.capacity} "
                "health checks",
                400,
            )
        return slot

    def _check_children(self, health_check_id: str | None, config: HealthCheckConfig) -> None:
        """Children of a calculated check exist and do not lead back to it."""
        children = config.children
        if not children:
            return
        configs = {c.id: c.config for c in self.all_health_checks()}
        for child in children:
            if child not in configs:
                raise InvalidInput(f"Invalid request: no health check with the ID {child}")
            if child == health_check_id:
                raise InvalidInput("Invalid request: a health check cannot be its own child")
        if health_check_id is None:
            return  # a new check: nothing refers to it yet
        seen: set[str] = set()
        pending = list(children)
        while pending:
            current = pending.pop()
            if current == health_check_id:
                raise InvalidInput(
                    "Invalid request: the child health checks would make this health check "
                    "depend on itself"
                )
            if current in seen or current not in configs:
                continue
            seen.add(current)
            pending.extend(configs[current].children)
