"""Hosted zones (the API's SQLite store) as served zones: read, build the model, compile.

The supervisor keeps one ``ServedZone`` per hosted zone and recompiles only the zones a change
touched. Called on the store's thread (the store is not shared between threads).
"""

from __future__ import annotations

import logging

import dns.name

from fastdns.compile import compile_zone_with_groups
from fastdns.dnssec.keystore import KeyStore
from fastdns.dnssec.signer import ZoneSigner
from fastdns.hostedcolumns import HostedColumns, HostedZoneModel
from fastdns.policy import PolicyEnvironment
from fastdns.route53.errors import ApiError
from fastdns.route53.tozone import zone_from_record_sets
from fastdns.server import ServedZone, zone_summary
from fastdns.store import Store

log = logging.getLogger("fastdns")

# Signed zones: the signer of each zone's last compile, whose signatures the next compile
# reuses (fastdns.dnssec.signer). Compiles run on the store's one thread.
_last_signers: dict[str, ZoneSigner] = {}
# Unsigned zones: their record sets packed for the native compiler (fastdns.hostedcolumns),
# patched per change; and why each zone last took the reference path (logged when it changes).
_columns: dict[str, HostedColumns] = {}
_reference_reasons: dict[str, str] = {}

__all__ = ["compile_hosted_zone", "load_hosted_zones"]


def compile_hosted_zone(
    store: Store, zone_id: str, env: PolicyEnvironment | None = None
) -> ServedZone | None:
    """The compiled form of hosted zone ``zone_id`` as it is in the store now, its routing
    policies built in ``env``; None if the zone no longer exists."""
    try:
        zone = store.get_hosted_zone(zone_id)
    except ApiError:
        zone = None
    if zone is None:
        _last_signers.pop(zone_id, None)
        _columns.pop(zone_id, None)
        _reference_reasons.pop(zone_id, None)
        return None
    origin = zone.origin
    keystore = KeyStore(store)
    keys = keystore.zone_keys(zone_id)
    if keys is None:
        served = _compile_native(store, zone_id, origin)
        if served is not None:
            return served
    else:
        _columns.pop(zone_id, None)
        _note_reference(zone_id, origin, "signed (DNSSEC)")
    model = zone_from_record_sets(origin, store.record_sets(zone_id).values())
    signer = None
    if keys is not None:
        signer = ZoneSigner(
            origin, keys, previous=_last_signers.get(zone_id), denial=keystore.denial(zone_id)
        )
    else:
        _last_signers.pop(zone_id, None)
    compiled = compile_zone_with_groups(model, env, signer)
    if signer is not None:
        _last_signers[zone_id] = signer
    record_sets, serial = zone_summary(model)
    return ServedZone(
        origin,
        compiled.image,
        record_sets,
        serial,
        f"hosted zone {zone_id}",
        zone_id,
        compiled.groups,
        zone=model,
        # The supervisor recompiles (re-signs) the zone once half the validity has passed.
        resign_at=signer.resign_at if signer is not None else None,
        signer=signer,
    )


def _compile_native(store: Store, zone_id: str, origin: dns.name.Name) -> ServedZone | None:
    """The zone compiled from its packed record sets, or None (the reason logged) when it
    takes the reference path."""
    columns = _columns.get(zone_id)
    if columns is None:
        columns = _columns[zone_id] = HostedColumns(zone_id)
    columns.sync(store)
    image, reason, record_sets, serial = columns.compile(origin)
    if image is None:
        _note_reference(zone_id, origin, reason or "")
        return None
    if _reference_reasons.pop(zone_id, None) is not None:
        log.info("hosted zone %s (%s): compiled natively again", zone_id, origin)
    return ServedZone(
        origin,
        image,
        record_sets,
        serial,
        f"hosted zone {zone_id}",
        zone_id,
        (),
        zone=HostedZoneModel(origin, origin.to_text(), columns.record_sets),
    )


def _note_reference(zone_id: str, origin: dns.name.Name, reason: str) -> None:
    if _reference_reasons.get(zone_id) != reason:
        _reference_reasons[zone_id] = reason
        log.info("hosted zone %s (%s): compiled through the model: %s", zone_id, origin, reason)


def load_hosted_zones(
    store: Store, env: PolicyEnvironment | None = None
) -> dict[dns.name.Name, ServedZone]:
    """Every hosted zone, compiled. A zone that fails to compile is logged and left out."""
    served = {}
    for zone in store.hosted_zones():
        try:
            result = compile_hosted_zone(store, zone.id, env)
        except Exception:  # a compiler bug must not take the other zones down
            log.exception("hosted zone %s (%s) cannot be compiled", zone.id, zone.name)
            continue
        if result is not None:
            served[result.origin] = result
    return served
