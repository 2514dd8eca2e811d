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
from fastdns.policy import PolicyEnvironment
from fastdns.route53.tozone import zone_from_record_sets
from fastdns.server import ServedZone, zone_summary
from fastdns.store import Store

log = logging.getLogger("fastdns")

# Signed zones: the signer of each zone's last compile, whose signatures the next compile
# reuses (fastdns.dnssec.signer). Compiles run on the store's one thread.
_last_signers: dict[str, ZoneSigner] = {}

__all__ = ["compile_hosted_zone", "load_hosted_zones"]


def compile_hosted_zone(
    store: Store, zone_id: str, env: PolicyEnvironment | None = None
) -> ServedZone | None:
    """The compiled form of hosted zone ``zone_id`` as it is in the store now, its routing
    policies built in ``env``; None if the zone no longer exists."""
    zones = {zone.id: zone for zone in store.hosted_zones()}
    zone = zones.get(zone_id)
    if zone is None:
        _last_signers.pop(zone_id, None)
        return None
    origin = zone.origin
    model = zone_from_record_sets(origin, store.record_sets(zone_id).values())
    keystore = KeyStore(store)
    keys = keystore.zone_keys(zone_id)
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
