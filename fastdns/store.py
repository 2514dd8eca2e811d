"""The embedded state: one SQLite database (WAL) with hosted zones, record sets, changes, tags.

Every write is one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) with ``synchronous=FULL``,
so a change whose API call returned is on disk, and a kill -9 at any moment leaves either the
whole batch or none of it. The change pipeline (``fastdns.changes``) is the only writer inside the
server; other processes (``fastdns zone import``) may write too: ``external_changes()`` tells the
server when one did.

Record sets are kept as JSON in the API's own shape (``ResourceRecordSet.data``), keyed by
(zone, name in Route 53 sort order, type, set identifier) so that ListResourceRecordSets is an
index range scan in exactly Route 53's order. A change row keeps what the batch removed and
added and the SOA serial it produced: the history IXFR will be served from.

Methods are blocking; the server calls them from one dedicated thread.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from fastdns.health.store import SCHEMA as HEALTH_CHECK_SCHEMA
from fastdns.health.store import require_health_check
from fastdns.route53.changebatch import BatchResult, apply_change_batch
from fastdns.route53.errors import ApiError, no_such_hosted_zone
from fastdns.route53.names import name_from_text, name_text, sort_key
from fastdns.route53.recordset import SUPPORTED_TYPES, RecordSetKey, ResourceRecordSet

__all__ = ["ChangeInfo", "HostedZone", "Store", "StoreError", "new_id"]

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hosted_zones (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    sort_name TEXT NOT NULL,
    caller_reference TEXT NOT NULL UNIQUE,
    comment TEXT,
    created_at TEXT NOT NULL,
    name_servers TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hosted_zones_by_name ON hosted_zones (sort_name, id);
CREATE TABLE IF NOT EXISTS record_sets (
    zone_id TEXT NOT NULL,
    sort_name TEXT NOT NULL,
    type TEXT NOT NULL,
    set_identifier TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (zone_id, sort_name, type, set_identifier)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    zone_id TEXT NOT NULL,
    status TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    comment TEXT,
    serial INTEGER,
    diff TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_by_status ON changes (status);
CREATE INDEX IF NOT EXISTS changes_by_zone ON changes (zone_id, seq);
CREATE TABLE IF NOT EXISTS tags (
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (resource_type, resource_id, key)
) WITHOUT ROWID;
"""

# Route 53's defaults for the records of a new hosted zone.
SOA_TTL = 900
NS_TTL = 172800
SOA_TIMERS = "1 7200 900 1209600 86400"  # serial refresh retry expire minimum
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
MAX_TAGS = 10  # Route 53: tags per resource
MAX_EDITS = 1024  # changes per zone that Store.record_set_edits remembers


class StoreError(Exception):
    """The state database cannot be opened or used; the message says why."""


def new_id(prefix: str) -> str:
    """A Route 53 style ID: ``prefix`` + 20 upper-case letters and digits."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


def _now() -> str:
    """The time now as Route 53 writes SubmittedAt: ISO 8601, UTC, milliseconds, ``Z``."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class HostedZone:
    id: str
    name: str  # Route 53 text, absolute
    caller_reference: str
    comment: str | None
    created_at: str
    name_servers: tuple[str, ...]
    record_set_count: int = 0

    @property
    def origin(self) -> dns.name.Name:
        return name_from_text(self.name)


@dataclass(frozen=True)
class ChangeInfo:
    id: str
    status: str  # PENDING or INSYNC
    submitted_at: str  # ISO 8601 UTC
    comment: str | None
    zone_id: str = ""
    serial: int | None = None


class Store:
    """The SQLite state database at ``path`` (created if missing)."""

    # A hosted zone's origin -> how its SOA serial moves on a change: "increment" or
    # "unixtime" (``fastdns.xfr.config.SerialConfig.for_zone``; the server sets it).
    serial_policy: Callable[[dns.name.Name], str] | None = None

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA busy_timeout=5000")
            self.db.executescript(SCHEMA)
            self.db.executescript(HEALTH_CHECK_SCHEMA)
            version = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if version is None:
                self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(version[0]) != SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: state database schema {version[0]}, this fastdns knows "
                    f"{SCHEMA_VERSION}"
                )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the state database: {exc}") from None
        # zone id -> its record sets, parsed once (parsing values is the slow part)
        self._record_sets: dict[str, dict[RecordSetKey, ResourceRecordSet]] = {}
        # zone id -> (generation its cache was loaded at, [(generation, keys) per change since]):
        # what ``record_set_edits`` answers from (issue 8: a change re-encodes what it touched).
        self._edits: dict[str, tuple[int, list[tuple[int, frozenset[RecordSetKey]]]]] = {}
        self._generation = 0
        # zone id -> name text -> keys with a SetIdentifier at that name (routing-policy
        # members), made when first needed: with the plain keys (name, type, "") looked up
        # type by type, what ``keys_at`` answers from.
        self._members: dict[str, dict[str, set[RecordSetKey]]] = {}
        self._data_version = self._current_data_version()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything inside commits together or not at all."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")
            self._data_version = self._current_data_version()

    def _current_data_version(self) -> int:
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def external_changes(self) -> bool:
        """True (once) when another process has written the database since we last looked;
        the caches are dropped then."""
        version = self._current_data_version()
        if version == self._data_version:
            return False
        self._data_version = version
        self._record_sets.clear()
        self._edits.clear()
        self._members.clear()
        return True

    # -- hosted zones

    def create_hosted_zone(
        self,
        name: str,
        caller_reference: str,
        comment: str | None,
        name_servers: tuple[str, ...],
        record_sets: list[ResourceRecordSet] | None = None,
    ) -> tuple[HostedZone, ChangeInfo]:
        """A new hosted zone with Route 53's default SOA and NS records (or ``record_sets``,
        for an import). ``ApiError`` HostedZoneAlreadyExists if ``caller_reference`` was used
        before, ConflictingDomainExists if a zone of that name exists."""
        origin = name_from_text(name)
        zone_name = name_text(origin)
        with self.transaction() as db:
            if db.execute(
                "SELECT 1 FROM hosted_zones WHERE caller_reference=?", (caller_reference,)
            ).fetchone():
                raise ApiError(
                    "HostedZoneAlreadyExists",
                    "A hosted zone has already been created with the specified caller "
                    f"reference: {caller_reference}",
                    409,
                )
            existing = db.execute(
                "SELECT id FROM hosted_zones WHERE name=?", (zone_name,)
            ).fetchone()
            if existing:
                raise ApiError(
                    "ConflictingDomainExists",
                    f"The hosted zone {existing[0]} already has the name {zone_name}; this "
                    "server serves one hosted zone per name",
                    400,
                )
            zone_id = new_id("Z")
            created = _now()
            db.execute(
                "INSERT INTO hosted_zones (id, name, sort_name, caller_reference, comment, "
                "created_at, name_servers) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    zone_id,
                    zone_name,
                    sort_key(origin),
                    caller_reference,
                    comment,
                    created,
                    json.dumps(list(name_servers)),
                ),
            )
            if record_sets is None:
                record_sets = default_record_sets(zone_name, name_servers)
            for rrset in record_sets:
                self._insert(zone_id, rrset)
            serial = _soa_serial(record_sets)
            change = self._add_change(zone_id, comment, serial, [], record_sets)
        self._record_sets[zone_id] = {rrset.key: rrset for rrset in record_sets}
        self._edits_restart(zone_id)
        zone = self.get_hosted_zone(zone_id)
        return zone, change

    def _zone(self, row) -> HostedZone:
        zone_id, name, reference, comment, created, servers = row
        # The record set count from the cache when it is loaded: counting a zone of a million
        # record sets in SQLite takes a tenth of a second, and every change asks.
        cached = self._record_sets.get(zone_id)
        if cached is not None:
            count = len(cached)
        else:
            count = self.db.execute(
                "SELECT count(*) FROM record_sets WHERE zone_id=?", (zone_id,)
            ).fetchone()[0]
        servers = tuple(json.loads(servers))
        return HostedZone(zone_id, name, reference, comment, created, servers, count)

    def get_hosted_zone(self, zone_id: str) -> HostedZone:
        row = self.db.execute(_ZONE_SELECT + " WHERE z.id=?", (zone_id,)).fetchone()
        if row is None:
            raise no_such_hosted_zone(zone_id)
        return self._zone(row)

    def hosted_zones(self) -> list[HostedZone]:
        """Every hosted zone, oldest first."""
        return [self._zone(row) for row in self.db.execute(_ZONE_SELECT + " ORDER BY z.seq")]

    def list_hosted_zones(
        self, marker: str | None, max_items: int
    ) -> tuple[list[HostedZone], str | None]:
        """ListHostedZones: zones in creation order from the one with ID ``marker``; the page
        and the ID that starts the next page (None at the end)."""
        start = 0
        if marker:
            row = self.db.execute("SELECT seq FROM hosted_zones WHERE id=?", (marker,)).fetchone()
            if row is None:
                raise ApiError("InvalidInput", f"Invalid marker: {marker}", 400)
            start = row[0]
        rows = self.db.execute(
            _ZONE_SELECT + " WHERE z.seq>=? ORDER BY z.seq LIMIT ?", (start, max_items + 1)
        ).fetchall()
        zones = [self._zone(row) for row in rows]
        if len(zones) > max_items:
            return zones[:max_items], zones[max_items].id
        return zones, None

    def list_hosted_zones_by_name(
        self, dns_name: str | None, zone_id: str | None, max_items: int
    ) -> tuple[list[HostedZone], tuple[str, str] | None]:
        """ListHostedZonesByName: zones by (reversed name, ID) from (``dns_name``,
        ``zone_id``); the page and the (name, ID) that starts the next one."""
        start_name = sort_key(name_from_text(dns_name)) if dns_name else ""
        rows = self.db.execute(
            _ZONE_SELECT + " WHERE (z.sort_name, z.id) >= (?, ?) ORDER BY z.sort_name, z.id "
            "LIMIT ?",
            (start_name, zone_id or "", max_items + 1),
        ).fetchall()
        zones = [self._zone(row) for row in rows]
        if len(zones) > max_items:
            following = zones[max_items]
            return zones[:max_items], (following.name, following.id)
        return zones, None

    def hosted_zone_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM hosted_zones").fetchone()[0]

    def update_comment(self, zone_id: str, comment: str | None) -> HostedZone:
        with self.transaction() as db:
            cursor = db.execute("UPDATE hosted_zones SET comment=? WHERE id=?", (comment, zone_id))
            if cursor.rowcount == 0:
                raise no_such_hosted_zone(zone_id)
        return self.get_hosted_zone(zone_id)

    def delete_hosted_zone(self, zone_id: str) -> ChangeInfo:
        """Delete a zone that holds only its apex SOA and NS (else HostedZoneNotEmpty)."""
        zone = self.get_hosted_zone(zone_id)
        with self.transaction() as db:
            others = db.execute(
                "SELECT count(*) FROM record_sets WHERE zone_id=? AND NOT "
                "(sort_name=? AND type IN ('SOA', 'NS') AND set_identifier='')",
                (zone_id, sort_key(zone.origin)),
            ).fetchone()[0]
            if others:
                raise ApiError(
                    "HostedZoneNotEmpty",
                    "The specified hosted zone contains non-required resource record sets and "
                    "so cannot be deleted.",
                    400,
                )
            removed = list(self.record_sets(zone_id).values())
            db.execute("DELETE FROM record_sets WHERE zone_id=?", (zone_id,))
            db.execute("DELETE FROM hosted_zones WHERE id=?", (zone_id,))
            db.execute(
                "DELETE FROM tags WHERE resource_type='hostedzone' AND resource_id=?", (zone_id,)
            )
            change = self._add_change(zone_id, None, None, removed, [])
        self._record_sets.pop(zone_id, None)
        self._edits.pop(zone_id, None)
        self._members.pop(zone_id, None)
        return change

    # -- record sets

    def record_sets(self, zone_id: str) -> dict[RecordSetKey, ResourceRecordSet]:
        """The zone's record sets (cached; do not modify)."""
        cached = self._record_sets.get(zone_id)
        if cached is None:
            cached = {}
            for (data,) in self.db.execute(
                "SELECT data FROM record_sets WHERE zone_id=?", (zone_id,)
            ):
                rrset = ResourceRecordSet.from_store(json.loads(data))
                cached[rrset.key] = rrset
            self._record_sets[zone_id] = cached
            self._edits_restart(zone_id)
        return cached

    def record_set_edits(
        self, zone_id: str, since: int
    ) -> tuple[int, frozenset[RecordSetKey] | None]:
        """``(generation, keys)``: the keys of the zone's record sets added, changed or deleted
        in this process after generation ``since`` (a generation this method returned, or -1),
        or None for keys when that is not known (the cache was loaded again, the zone
        replaced, the history trimmed); compare ``generation`` in the next call. Call
        ``record_sets`` first: the keys are relative to what it returns."""
        entry = self._edits.get(zone_id)
        if entry is None or since < entry[0]:
            return self._generation, None
        keys: set[RecordSetKey] = set()
        for generation, edited in reversed(entry[1]):
            if generation <= since:
                break
            keys.update(edited)
        return self._generation, frozenset(keys)

    def keys_at(self, zone_id: str) -> Callable[[str], list[RecordSetKey]]:
        """A function: name text -> the keys of the zone's record sets (as ``record_sets``
        returns them now) at that name; a few dict lookups, not a scan of the zone."""
        record_sets = self.record_sets(zone_id)
        members = self._members.get(zone_id)
        if members is None:
            members = self._members[zone_id] = {}
            for key in record_sets:
                if key[2]:
                    members.setdefault(key[0], set()).add(key)

        def keys_at(name: str) -> list[RecordSetKey]:
            keys = [(name, t, "") for t in SUPPORTED_TYPES if (name, t, "") in record_sets]
            keys.extend(k for k in members.get(name, ()) if k in record_sets)
            return keys

        return keys_at

    def _edits_restart(self, zone_id: str) -> None:
        self._members.pop(zone_id, None)
        self._generation += 1
        self._edits[zone_id] = (self._generation, [])

    def _edits_add(self, zone_id: str, keys: frozenset[RecordSetKey]) -> None:
        entry = self._edits.get(zone_id)
        if entry is None:
            return
        self._generation += 1
        start, log = entry
        log.append((self._generation, keys))
        if len(log) > MAX_EDITS:
            start = log.pop(0)[0]
            self._edits[zone_id] = (start, log)

    def list_record_sets(
        self,
        zone_id: str,
        start: tuple[str, str, str] | None,
        max_items: int,
    ) -> tuple[list[dict], tuple[str, str, str] | None]:
        """ListResourceRecordSets: from ``start`` = (name, type or "", identifier or "") in
        Route 53's order; the page and the (name, type, identifier) that begins the next."""
        self.get_hosted_zone(zone_id)
        query = "SELECT data FROM record_sets WHERE zone_id=?"
        args: list = [zone_id]
        if start is not None:
            name, rtype, identifier = start
            query += " AND (sort_name, type, set_identifier) >= (?, ?, ?)"
            args += [sort_key(name_from_text(name)), rtype, identifier]
        query += " ORDER BY sort_name, type, set_identifier LIMIT ?"
        args.append(max_items + 1)
        rows = [json.loads(data) for (data,) in self.db.execute(query, args)]
        if len(rows) > max_items:
            following = rows[max_items]
            return rows[:max_items], (
                following["Name"],
                following["Type"],
                following.get("SetIdentifier", ""),
            )
        return rows, None

    def change_record_sets(
        self,
        zone_id: str,
        changes: list,
        comment: str | None,
        health_check_exists=None,
        policy_problem=None,
        zone_problems=None,
    ) -> tuple[ChangeInfo, BatchResult]:
        """Apply a parsed change batch atomically and bump the SOA serial; ``ApiError`` if
        the zone does not exist, ``InvalidChangeBatch`` if the batch is refused (see
        ``apply_change_batch`` for the two callables)."""
        zone = self.get_hosted_zone(zone_id)
        with self.transaction():
            current = self.record_sets(zone_id)
            result = apply_change_batch(
                zone_id,
                zone.origin,
                current,
                changes,
                health_check_exists or (lambda _id: False),
                policy_problem or (lambda _rrset: None),
                zone_problems or (lambda _record_sets: []),
                self.keys_at(zone_id),
            )
            final = result.record_sets
            soa_key = (zone.name, "SOA", "")
            soa = _bumped_soa(current.get(soa_key), final.get(soa_key), self._policy(zone))
            if soa is not None:
                final[soa_key] = soa
            # The keys the batch touched, in the order it touched them (not a scan of the zone).
            touched = dict.fromkeys(r.key for r in result.deleted + result.added)
            touched[soa_key] = None
            deleted = [
                current[k] for k in touched if k in current and final.get(k) is not current[k]
            ]
            added = [final[k] for k in touched if k in final and current.get(k) is not final[k]]
            for rrset in deleted:
                if rrset.key not in final:
                    self._delete(zone_id, rrset)
            for rrset in added:
                self._insert(zone_id, rrset)
            result.deleted, result.added = deleted, added
            serial = _soa_serial(final.values())
            change = self._add_change(zone_id, comment, serial, deleted, added)
        self._record_sets[zone_id] = final
        self._edits_add(zone_id, frozenset(r.key for r in deleted + added))
        members = self._members.get(zone_id)
        if members is not None:
            for rrset in added:
                if rrset.key[2]:
                    members.setdefault(rrset.key[0], set()).add(rrset.key)
        return change, result

    def replace_record_sets(
        self, zone_id: str, record_sets: list[ResourceRecordSet], comment: str | None
    ) -> ChangeInfo:
        """Replace every record set of a zone in one change (``fastdns zone import --replace``).
        The caller has validated the new zone; the SOA serial still moves forward."""
        zone = self.get_hosted_zone(zone_id)
        with self.transaction():
            current = self.record_sets(zone_id)
            final = {rrset.key: rrset for rrset in record_sets}
            soa_key = (zone.name, "SOA", "")
            soa = _bumped_soa(current.get(soa_key), final.get(soa_key), self._policy(zone))
            if soa is not None:
                final[soa_key] = soa
            self.db.execute("DELETE FROM record_sets WHERE zone_id=?", (zone_id,))
            for rrset in final.values():
                self._insert(zone_id, rrset)
            serial = _soa_serial(final.values())
            change = self._add_change(
                zone_id, comment, serial, list(current.values()), list(final.values())
            )
        self._record_sets[zone_id] = final
        self._edits_restart(zone_id)
        return change

    def _policy(self, zone: HostedZone) -> str:
        return self.serial_policy(zone.origin) if self.serial_policy else "increment"

    def find_hosted_zone(self, id_or_name: str) -> HostedZone:
        """A zone by ID (``Z...`` or ``/hostedzone/Z...``) or by name."""
        zone_id = id_or_name.rsplit("/", 1)[-1]
        row = self.db.execute(_ZONE_SELECT + " WHERE z.id=?", (zone_id,)).fetchone()
        if row is None:
            try:
                name = name_text(name_from_text(id_or_name))
            except ValueError:
                raise no_such_hosted_zone(id_or_name) from None
            row = self.db.execute(_ZONE_SELECT + " WHERE z.name=?", (name,)).fetchone()
        if row is None:
            raise no_such_hosted_zone(id_or_name)
        return self._zone(row)

    def _insert(self, zone_id: str, rrset: ResourceRecordSet) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO record_sets VALUES (?, ?, ?, ?, ?)",
            (
                zone_id,
                sort_key(rrset.name),
                rrset.type,
                rrset.set_identifier or "",
                json.dumps(rrset.data, separators=(",", ":")),
            ),
        )

    def _delete(self, zone_id: str, rrset: ResourceRecordSet) -> None:
        self.db.execute(
            "DELETE FROM record_sets WHERE zone_id=? AND sort_name=? AND type=? AND "
            "set_identifier=?",
            (zone_id, sort_key(rrset.name), rrset.type, rrset.set_identifier or ""),
        )

    # -- changes

    def _add_change(self, zone_id, comment, serial, deleted, added) -> ChangeInfo:
        change = ChangeInfo(new_id("C"), "PENDING", _now(), comment, zone_id, serial)
        diff = {"deleted": [r.data for r in deleted], "added": [r.data for r in added]}
        self.db.execute(
            "INSERT INTO changes (id, zone_id, status, submitted_at, comment, serial, diff) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                change.id,
                zone_id,
                change.status,
                change.submitted_at,
                comment,
                serial,
                json.dumps(diff, separators=(",", ":")),
            ),
        )
        return change

    def get_change(self, change_id: str) -> ChangeInfo:
        row = self.db.execute(
            "SELECT id, status, submitted_at, comment, zone_id, serial FROM changes WHERE id=?",
            (change_id,),
        ).fetchone()
        if row is None:
            raise ApiError(
                "NoSuchChange",
                f"A change with the specified change ID does not exist: {change_id}",
                404,
            )
        return ChangeInfo(*row)

    def zone_changes(self, zone_id: str) -> Iterator[tuple[int | None, dict]]:
        """The zone's change history, newest first: (SOA serial after the change, its diff
        ``{"deleted": [record set dicts], "added": [...]}``) -- what IXFR is served from."""
        rows = self.db.execute(
            "SELECT serial, diff FROM changes WHERE zone_id=? ORDER BY seq DESC", (zone_id,)
        )
        for serial, diff in rows:
            yield serial, json.loads(diff)

    def pending_changes(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT id FROM changes WHERE status='PENDING'")]

    def mark_insync(self, change_ids: list[str]) -> None:
        if not change_ids:
            return
        with self.transaction() as db:
            db.executemany(
                "UPDATE changes SET status='INSYNC' WHERE id=?", [(i,) for i in change_ids]
            )

    # -- tags

    def list_tags(self, resource_type: str, resource_id: str) -> list[tuple[str, str]]:
        self._check_resource(resource_type, resource_id)
        return list(
            self.db.execute(
                "SELECT key, value FROM tags WHERE resource_type=? AND resource_id=? ORDER BY key",
                (resource_type, resource_id),
            )
        )

    def change_tags(
        self,
        resource_type: str,
        resource_id: str,
        add: list[tuple[str, str]],
        remove: list[str],
    ) -> None:
        self._check_resource(resource_type, resource_id)
        with self.transaction() as db:
            db.executemany(
                "DELETE FROM tags WHERE resource_type=? AND resource_id=? AND key=?",
                [(resource_type, resource_id, key) for key in remove],
            )
            db.executemany(
                "INSERT OR REPLACE INTO tags VALUES (?, ?, ?, ?)",
                [(resource_type, resource_id, key, value) for key, value in add],
            )
            count = db.execute(
                "SELECT count(*) FROM tags WHERE resource_type=? AND resource_id=?",
                (resource_type, resource_id),
            ).fetchone()[0]
            if count > MAX_TAGS:
                raise ApiError(
                    "InvalidInput",
                    f"Invalid request: a resource can have at most {MAX_TAGS} tags",
                    400,
                )

    def _check_resource(self, resource_type: str, resource_id: str) -> None:
        if resource_type == "hostedzone":
            self.get_hosted_zone(resource_id)
        elif resource_type == "healthcheck":
            require_health_check(self.db, resource_id)
        else:
            raise ApiError("InvalidInput", f"Invalid resource type: {resource_type}", 400)


_ZONE_SELECT = (
    "SELECT z.id, z.name, z.caller_reference, z.comment, z.created_at, z.name_servers "
    "FROM hosted_zones z"
)


def default_record_sets(zone_name: str, name_servers: tuple[str, ...]) -> list[ResourceRecordSet]:
    """Route 53's records of a new zone: SOA (serial 1, its timers) and NS to the delegation
    set."""
    primary = name_servers[0]
    soa = f"{primary} hostmaster.{zone_name if zone_name != '.' else ''} {SOA_TIMERS}"
    return [
        ResourceRecordSet.from_api(
            {"Name": zone_name, "Type": "SOA", "TTL": SOA_TTL, "ResourceRecords": [{"Value": soa}]}
        ),
        ResourceRecordSet.from_api(
            {
                "Name": zone_name,
                "Type": "NS",
                "TTL": NS_TTL,
                "ResourceRecords": [{"Value": server} for server in name_servers],
            }
        ),
    ]


def _soa_serial(record_sets) -> int | None:
    for rrset in record_sets:
        if rrset.type == "SOA" and rrset.rdatas:
            return rrset.rdatas[0].serial
    return None


def _bumped_soa(
    before: ResourceRecordSet | None,
    after: ResourceRecordSet | None,
    policy: str = "increment",
    now: float | None = None,
) -> ResourceRecordSet | None:
    """The SOA after a batch: its serial moved forward (RFC 1982) past the serial before it.

    A batch that sets the serial itself to one later than before keeps it; otherwise the serial
    becomes, with ``policy`` "unixtime", the time ``now`` (seconds since 1970) if that is later
    than before, and else (or with "increment") the previous one plus 1, modulo 2^32 (RFC 1982
    §3.1).
    """
    if before is None or after is None or not before.rdatas or not after.rdatas:
        return after
    old = before.rdatas[0].serial
    new = after.rdatas[0].serial
    if _serial_gt(new, old):
        return after
    serial = (old + 1) % 2**32
    if policy == "unixtime":
        clock = int(time.time() if now is None else now) % 2**32
        if _serial_gt(clock, old):
            serial = clock
    rdata = after.rdatas[0].replace(serial=serial)
    data = dict(after.data, ResourceRecords=[{"Value": rdata.to_text()}])
    return ResourceRecordSet(after.name, after.type, data, (rdata,))


def _serial_gt(a: int, b: int) -> bool:
    """RFC 1982 §3.2: a > b in serial number arithmetic (32 bits)."""
    return a != b and ((a < b and b - a > 2**31) or (a > b and a - b < 2**31))
