"""DNSSEC keys and signing status of hosted zones, in the state database.

``KeyStore(store)`` works on the ``fastdns.store.Store``'s SQLite connection and transactions
(like ``fastdns.health.store``) and creates its two tables on first use: ``dnssec_zones`` (is
the zone signed) and ``dnssec_keys`` (every key-signing and zone-signing key, its private key
as unencrypted PKCS#8 PEM). Once a private key is written the database file (and its WAL and
shared-memory files, which hold recent pages) is made readable by its owner only (0600).
Private keys are never logged: ``SigningKey`` leaves them out of its ``repr``.

Route 53's rules (API reference for each operation):

* CreateKeySigningKey: Name of 3-128 letters, digits and underscores, unique in the zone
  (InvalidKeySigningKeyName, KeySigningKeyAlreadyExists); CallerReference unique
  (KeySigningKeyAlreadyExists); Status ACTIVE or INACTIVE; at most two KSKs per zone
  (TooManyKeySigningKeys). The KMS key ARN is kept as an opaque label: keys are made here.
* EnableHostedZoneDNSSEC needs an ACTIVE KSK (KeySigningKeyWithActiveStatusNotFound); the zone's
  ZSK is made then, with the KSK's algorithm (RFC 6840 §5.11: every algorithm of the DNSKEY set
  signs the zone).
* DeactivateKeySigningKey of the last ACTIVE KSK of a signed zone: KeySigningKeyInUse.
* DeleteKeySigningKey of an ACTIVE KSK: InvalidKeySigningKeyStatus (deactivate it first).

Every operation that changes what the zone serves returns a Route 53 change (PENDING until the
workers serve the recompiled zone). One that changes a signed zone's DNSSEC records (enable,
disable, a KSK of a signed zone activated or deactivated, a rollover step, re-signing) moves the
SOA serial in that change, so that secondaries transfer the zone again (``fastdns.dnssec.serial``).

ZSK rollover is automatic, by pre-publication (RFC 6781 §4.1.1.1; RFC 7583 §3.2 names the
timings): ``roll_zone_signing_keys`` (the supervisor calls it on a timer, tests with their own
clock) publishes a new ZSK once the signing one is ``ZSK_LIFETIME`` old; after
``PUBLISH_WAIT`` (longer than the DNSKEY TTL, so every resolver's cached key set has it) the new
key signs and the old one stays published (RETIRED) for ``RETIRE_WAIT`` (longer than any TTL of
the signatures it made that a resolver may still hold), then is deleted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import secrets
import sqlite3
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastdns.dnssec.compact import supports_online
from fastdns.dnssec.keys import (
    ALGORITHMS,
    DNSKEY_TTL,
    DS_DIGEST_SHA256,
    ECDSAP256SHA256,
    SigningKey,
    generate_private_key,
    private_key_from_pem,
    private_key_to_pem,
)
from fastdns.dnssec.serial import record_dnssec_change
from fastdns.route53.errors import ApiError

if TYPE_CHECKING:
    from fastdns.store import ChangeInfo, Store

__all__ = [
    "DENIAL_COMPACT",
    "DENIAL_MODES",
    "DENIAL_NSEC3",
    "SCHEMA",
    "KeySigningKeyInfo",
    "KeyStore",
    "ZoneKeys",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS dnssec_zones (
    zone_id TEXT PRIMARY KEY,
    signing INTEGER NOT NULL,
    modified_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dnssec_keys (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    zone_id TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    algorithm INTEGER NOT NULL,
    status TEXT NOT NULL,
    kms_arn TEXT,
    caller_reference TEXT UNIQUE,
    private_key BLOB NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    since REAL NOT NULL DEFAULT 0,  -- epoch seconds of the last status change (ZSK rollover)
    UNIQUE (zone_id, name)
);
-- How a signed zone denies existence when it is not the default, compact (Route 53's).
CREATE TABLE IF NOT EXISTS dnssec_denial (
    zone_id TEXT PRIMARY KEY,
    mode TEXT NOT NULL
);
"""
# Denial of existence, per zone: Route 53's compact NSEC made per query (RFC 9824), or an NSEC3
# chain signed at compile time (RFC 5155 with RFC 9276 parameters).
DENIAL_COMPACT = "compact"
DENIAL_NSEC3 = "nsec3"
DENIAL_MODES = (DENIAL_COMPACT, DENIAL_NSEC3)

MAX_KSKS = 2  # Route 53: two KSKs per zone, for KSK rollover
ZSK_LIFETIME = 90 * 86400
PUBLISH_WAIT = 2 * DNSKEY_TTL
# Route 53's longest default TTL is the NS RRset's 2 days; signatures of RRsets with longer
# TTLs may outlive the old key in caches (a documented limitation).
RETIRE_WAIT = 2 * 86400 + 3600
PUBLISHED, RETIRED = "PUBLISHED", "RETIRED"  # ZSK states besides ACTIVE
_KEY_NAME = re.compile(r"^[A-Za-z0-9_]{3,128}$")
ACTIVE, INACTIVE = "ACTIVE", "INACTIVE"
_schema_ready: weakref.WeakSet = weakref.WeakSet()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class KeySigningKeyInfo:
    """A KSK as GetDNSSEC shows it."""

    key: SigningKey
    status: str
    kms_arn: str
    created_at: str
    modified_at: str


@dataclass(frozen=True)
class ZoneKeys:
    """What a signed zone is signed with: its active KSKs (they sign the DNSKEY RRset), its
    signing ZSK (the rest), and ZSKs published before or after their time (rollover). The
    DNSKEY RRset publishes all of them."""

    ksks: tuple[SigningKey, ...]
    zsks: tuple[SigningKey, ...]
    standby: tuple[SigningKey, ...] = ()  # ZSKs published but not signing (rollover)


class KeyStore:
    """The DNSSEC state of ``store``'s hosted zones (blocking; the store's thread)."""

    def __init__(self, store: Store):
        self.store = store
        self.db: sqlite3.Connection = store.db
        if store not in _schema_ready:
            self.db.executescript(SCHEMA)
            _schema_ready.add(store)

    # -- reading

    def signing(self, zone_id: str) -> bool:
        row = self.db.execute(
            "SELECT signing FROM dnssec_zones WHERE zone_id=?", (zone_id,)
        ).fetchone()
        return bool(row and row[0])

    def key_signing_keys(self, zone_id: str) -> list[KeySigningKeyInfo]:
        rows = self.db.execute(
            "SELECT name, algorithm, status, kms_arn, private_key, created_at, modified_at "
            "FROM dnssec_keys WHERE zone_id=? AND role='KSK' ORDER BY seq",
            (zone_id,),
        )
        return [
            KeySigningKeyInfo(
                SigningKey.from_private_key(name, "KSK", alg, private_key_from_pem(pem)),
                status,
                arn or "",
                created,
                modified,
            )
            for name, alg, status, arn, pem, created, modified in rows
        ]

    def zone_keys(self, zone_id: str) -> ZoneKeys | None:
        """The keys to sign ``zone_id`` with, or None when it is not signed."""
        if not self.signing(zone_id):
            return None
        rows = self.db.execute(
            "SELECT name, role, algorithm, private_key, status FROM dnssec_keys "
            "WHERE zone_id=? AND (status='ACTIVE' OR role='ZSK') ORDER BY seq",
            (zone_id,),
        ).fetchall()
        keys = [
            (SigningKey.from_private_key(name, role, alg, private_key_from_pem(pem)), status)
            for name, role, alg, pem, status in rows
        ]
        ksks = tuple(k for k, _status in keys if k.role == "KSK")
        zsks = tuple(k for k, status in keys if k.role == "ZSK" and status == ACTIVE)
        standby = tuple(k for k, status in keys if k.role == "ZSK" and status != ACTIVE)
        if not ksks or not zsks:
            return None
        return ZoneKeys(ksks, zsks, standby)

    # -- ZSK rollover

    def roll_zone_signing_keys(self, zone_id: str, now: float | None = None) -> bool:
        """Move the zone's ZSK rollover on to where ``now`` puts it (see the module's text);
        True when what the zone serves changed (recompile it)."""
        now = time.time() if now is None else now
        with self.store.transaction() as db:
            if not self._signing(db, zone_id):
                return False
            rows = db.execute(
                "SELECT name, algorithm, status, since FROM dnssec_keys "
                "WHERE zone_id=? AND role='ZSK' ORDER BY seq",
                (zone_id,),
            ).fetchall()
            changed = False
            for name, _alg, status, since in rows:
                if status == RETIRED and now >= since + RETIRE_WAIT:
                    db.execute(
                        "DELETE FROM dnssec_keys WHERE zone_id=? AND name=?", (zone_id, name)
                    )
                    changed = True
            active = [r for r in rows if r[2] == ACTIVE]
            published = [r for r in rows if r[2] == PUBLISHED]
            if published and now >= published[0][3] + PUBLISH_WAIT:
                # The new key has been in every cached DNSKEY set for a while: it signs now.
                for name, *_rest in active:
                    self._set_zsk_status(db, zone_id, name, RETIRED, now)
                self._set_zsk_status(db, zone_id, published[0][0], ACTIVE, now)
                changed = True
            elif not published and active and now >= active[0][3] + ZSK_LIFETIME:
                self._insert_zsk(db, zone_id, active[0][1], PUBLISHED, now)
                changed = True
            if changed:  # the DNSKEY set or the signing key changed: a new serial
                record_dnssec_change(self.store, zone_id, "rollover")
        if changed:
            self._restrict_permissions()
        return changed

    def record_resign(self, zone_id: str) -> bool:
        """Before the zone is compiled again to refresh its signatures: move its serial so
        that secondaries transfer the new RRSIGs (``fastdns.dnssec.serial``). False (nothing
        recorded) when the zone is not signed."""
        with self.store.transaction() as db:
            if not self._signing(db, zone_id):
                return False
            record_dnssec_change(self.store, zone_id, "resign")
        return True

    def signed_zones(self) -> list[str]:
        """The IDs of the hosted zones that are signed."""
        return [row[0] for row in self.db.execute("SELECT zone_id FROM dnssec_zones WHERE signing")]

    def roll_all(self, now: float | None = None) -> list[str]:
        """``roll_zone_signing_keys`` for every signed zone; the zones that changed."""
        zones = self.signed_zones()
        return [zone_id for zone_id in zones if self.roll_zone_signing_keys(zone_id, now)]

    @staticmethod
    def _set_zsk_status(db, zone_id: str, name: str, status: str, now: float) -> None:
        db.execute(
            "UPDATE dnssec_keys SET status=?, since=?, modified_at=? WHERE zone_id=? AND name=?",
            (status, now, _now(), zone_id, name),
        )

    @staticmethod
    def _insert_zsk(db, zone_id: str, algorithm: int, status: str, now: float) -> None:
        private = generate_private_key(algorithm)
        stamp = _now()
        db.execute(
            "INSERT INTO dnssec_keys (zone_id, name, role, algorithm, status, kms_arn, "
            "caller_reference, private_key, created_at, modified_at, since) "
            "VALUES (?, ?, 'ZSK', ?, ?, NULL, NULL, ?, ?, ?, ?)",
            (zone_id, "zsk_" + secrets.token_hex(8), algorithm, status,
             private_key_to_pem(private), stamp, stamp, now),
        )  # fmt: skip

    # -- Route 53 operations

    def create_key_signing_key(
        self,
        zone_id: str,
        name: str,
        caller_reference: str,
        kms_arn: str,
        status: str,
        algorithm: int = ECDSAP256SHA256,
    ) -> tuple[KeySigningKeyInfo, ChangeInfo]:
        self.store.get_hosted_zone(zone_id)  # NoSuchHostedZone
        if not isinstance(name, str) or not _KEY_NAME.match(name):
            raise ApiError(
                "InvalidKeySigningKeyName",
                "The key-signing key (KSK) name must be 3 to 128 letters, digits or underscores",
            )
        if status not in (ACTIVE, INACTIVE):
            raise ApiError(
                "InvalidKeySigningKeyStatus",
                f"The key-signing key (KSK) status must be ACTIVE or INACTIVE, not {status!r}",
            )
        if not kms_arn:
            raise ApiError("InvalidKMSArn", "The KeyManagementServiceArn is required")
        if algorithm not in ALGORITHMS:
            raise ApiError("InvalidArgument", f"Unsupported DNSSEC algorithm {algorithm}")
        private = generate_private_key(algorithm)
        now = _now()
        with self.store.transaction() as db:
            existing = db.execute(
                "SELECT count(*) FROM dnssec_keys WHERE zone_id=? AND role='KSK'", (zone_id,)
            ).fetchone()[0]
            clash = db.execute(
                "SELECT 1 FROM dnssec_keys WHERE (zone_id=? AND name=?) OR caller_reference=?",
                (zone_id, name, caller_reference),
            ).fetchone()
            if clash:
                raise ApiError(
                    "KeySigningKeyAlreadyExists",
                    "You've already created a key-signing key (KSK) with this name or with the "
                    "CallerReference",
                    409,
                )
            if existing >= MAX_KSKS:
                raise ApiError(
                    "TooManyKeySigningKeys",
                    f"You've reached the limit of {MAX_KSKS} key-signing keys for this zone",
                )
            db.execute(
                "INSERT INTO dnssec_keys (zone_id, name, role, algorithm, status, kms_arn, "
                "caller_reference, private_key, created_at, modified_at) "
                "VALUES (?, ?, 'KSK', ?, ?, ?, ?, ?, ?, ?)",
                (zone_id, name, algorithm, status, kms_arn, caller_reference,
                 private_key_to_pem(private), now, now),
            )  # fmt: skip
            if status == ACTIVE and self._signing(db, zone_id):  # a new DNSKEY is served
                change = record_dnssec_change(self.store, zone_id, "key")
            else:
                change = self.store._add_change(zone_id, None, None, [], [])
        self._restrict_permissions()
        key = SigningKey.from_private_key(name, "KSK", algorithm, private)
        return KeySigningKeyInfo(key, status, kms_arn, now, now), change

    def set_key_signing_key_status(self, zone_id: str, name: str, status: str) -> ChangeInfo:
        """ActivateKeySigningKey / DeactivateKeySigningKey."""
        with self.store.transaction() as db:
            current = self._ksk_status(db, zone_id, name)
            if status == INACTIVE and current == ACTIVE and self._signing(db, zone_id):
                active = db.execute(
                    "SELECT count(*) FROM dnssec_keys WHERE zone_id=? AND role='KSK' "
                    "AND status='ACTIVE'",
                    (zone_id,),
                ).fetchone()[0]
                if active <= 1:
                    raise ApiError(
                        "KeySigningKeyInUse",
                        "The key-signing key (KSK) that you specified can't be deactivated "
                        "because it's the only KSK for a currently enabled DNSSEC. Disable "
                        "DNSSEC signing, or add or enable another KSK.",
                    )
            db.execute(
                "UPDATE dnssec_keys SET status=?, modified_at=? WHERE zone_id=? AND name=? "
                "AND role='KSK'",
                (status, _now(), zone_id, name),
            )
            if self._signing(db, zone_id):  # the served DNSKEY set changes
                return record_dnssec_change(self.store, zone_id, "key")
            return self.store._add_change(zone_id, None, None, [], [])

    def delete_key_signing_key(self, zone_id: str, name: str) -> ChangeInfo:
        with self.store.transaction() as db:
            if self._ksk_status(db, zone_id, name) == ACTIVE:
                raise ApiError(
                    "InvalidKeySigningKeyStatus",
                    "The key-signing key (KSK) must be deactivated before it can be deleted",
                )
            db.execute(
                "DELETE FROM dnssec_keys WHERE zone_id=? AND name=? AND role='KSK'",
                (zone_id, name),
            )
            return self.store._add_change(zone_id, None, None, [], [])

    def enable(self, zone_id: str) -> ChangeInfo:
        """EnableHostedZoneDNSSEC: sign the zone; a ZSK is made if it has none."""
        self.store.get_hosted_zone(zone_id)
        with self.store.transaction() as db:
            ksk = db.execute(
                "SELECT algorithm FROM dnssec_keys WHERE zone_id=? AND role='KSK' AND "
                "status='ACTIVE' ORDER BY seq LIMIT 1",
                (zone_id,),
            ).fetchone()
            if ksk is None:
                raise ApiError(
                    "KeySigningKeyWithActiveStatusNotFound",
                    "A key-signing key (KSK) with ACTIVE status wasn't found.",
                )
            has_zsk = db.execute(
                "SELECT 1 FROM dnssec_keys WHERE zone_id=? AND role='ZSK' AND status='ACTIVE'",
                (zone_id,),
            ).fetchone()
            now = _now()
            if not has_zsk:
                self._insert_zsk(db, zone_id, ksk[0], ACTIVE, time.time())
            db.execute(
                "INSERT INTO dnssec_zones (zone_id, signing, modified_at) VALUES (?, 1, ?) "
                "ON CONFLICT (zone_id) DO UPDATE SET signing=1, modified_at=excluded.modified_at",
                (zone_id, now),
            )
            change = record_dnssec_change(self.store, zone_id, "enable")
        self._restrict_permissions()
        return change

    def disable(self, zone_id: str) -> ChangeInfo:
        """DisableHostedZoneDNSSEC: serve the zone unsigned (its keys are kept)."""
        self.store.get_hosted_zone(zone_id)
        with self.store.transaction() as db:
            known = db.execute(
                "SELECT 1 FROM dnssec_zones WHERE zone_id=? UNION "
                "SELECT 1 FROM dnssec_keys WHERE zone_id=?",
                (zone_id, zone_id),
            ).fetchone()
            if not known:
                raise ApiError(
                    "DNSSECNotFound", "The hosted zone doesn't have any DNSSEC resources."
                )
            signing = self._signing(db, zone_id)
            db.execute(
                "UPDATE dnssec_zones SET signing=0, modified_at=? WHERE zone_id=?",
                (_now(), zone_id),
            )
            if signing:  # the DNSSEC records go: secondaries must drop them too
                return record_dnssec_change(self.store, zone_id, "disable")
            return self.store._add_change(zone_id, None, None, [], [])

    def denial(self, zone_id: str) -> str:
        """The zone's denial of existence mode (DENIAL_COMPACT unless set otherwise)."""
        row = self.db.execute(
            "SELECT mode FROM dnssec_denial WHERE zone_id=?", (zone_id,)
        ).fetchone()
        return row[0] if row else DENIAL_COMPACT

    def denies_online(self, zone_id: str) -> bool:
        """Whether the zone, once signed, answers denials and routing-policy NODATA with
        NSEC records signed per query: compact denial with a ZSK the hot path signs with (the
        one it has, else the one enabling would make: the active KSK's algorithm)."""
        if self.denial(zone_id) != DENIAL_COMPACT:
            return False
        row = self.db.execute(
            "SELECT algorithm FROM dnssec_keys WHERE zone_id=? AND status='ACTIVE' "
            "ORDER BY role='ZSK' DESC, seq LIMIT 1",
            (zone_id,),
        ).fetchone()
        return row is None or supports_online(row[0])

    def set_denial(self, zone_id: str, mode: str) -> ChangeInfo:
        """Choose the zone's denial mode; recorded as a change, so it is compiled and served
        like one (``fastdns zone dnssec-denial``)."""
        if mode not in DENIAL_MODES:
            raise ValueError(f"denial mode must be one of {', '.join(DENIAL_MODES)}")
        self.store.get_hosted_zone(zone_id)
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO dnssec_denial (zone_id, mode) VALUES (?, ?) "
                "ON CONFLICT (zone_id) DO UPDATE SET mode=excluded.mode",
                (zone_id, mode),
            )
            return self.store._add_change(zone_id, None, None, [], [])

    def forget_zone(self, zone_id: str) -> None:
        """A deleted hosted zone's keys and status go with it."""
        with self.store.transaction() as db:
            db.execute("DELETE FROM dnssec_denial WHERE zone_id=?", (zone_id,))
            db.execute("DELETE FROM dnssec_keys WHERE zone_id=?", (zone_id,))
            db.execute("DELETE FROM dnssec_zones WHERE zone_id=?", (zone_id,))

    # -- helpers

    @staticmethod
    def _ksk_status(db, zone_id: str, name: str) -> str:
        row = db.execute(
            "SELECT status FROM dnssec_keys WHERE zone_id=? AND name=? AND role='KSK'",
            (zone_id, name),
        ).fetchone()
        if row is None:
            raise ApiError(
                "NoSuchKeySigningKey",
                f"The specified key-signing key (KSK) doesn't exist: {name}",
                404,
            )
        return row[0]

    @staticmethod
    def _signing(db, zone_id: str) -> bool:
        row = db.execute("SELECT signing FROM dnssec_zones WHERE zone_id=?", (zone_id,)).fetchone()
        return bool(row and row[0])

    def _restrict_permissions(self) -> None:
        """The database now holds private keys: owner-only access to it and its journals."""
        for suffix in ("", "-wal", "-shm"):
            path = f"{self.store.path}{suffix}"
            with contextlib.suppress(FileNotFoundError):
                os.chmod(path, 0o600)


def ds_fields(info: KeySigningKeyInfo, origin) -> dict:
    """A KSK in GetDNSSEC's ``KeySigningKey`` shape."""
    key = info.key
    ds = key.ds(origin)
    digest = ds.digest.hex().upper()
    return {
        "Name": key.name,
        "KmsArn": info.kms_arn,
        "Flag": key.dnskey.flags,
        "SigningAlgorithmMnemonic": ALGORITHMS[key.algorithm],
        "SigningAlgorithmType": key.algorithm,
        "DigestAlgorithmMnemonic": "SHA-256",
        "DigestAlgorithmType": DS_DIGEST_SHA256,
        "KeyTag": key.tag,
        "DigestValue": digest,
        "PublicKey": key.public_key_text,
        "DSRecord": f"{key.tag} {key.algorithm} {DS_DIGEST_SHA256} {digest}",
        "DNSKEYRecord": key.dnskey.to_text(),
        "Status": info.status,
        "StatusMessage": "",
        "CreatedDate": info.created_at,
        "LastModifiedDate": info.modified_at,
    }
