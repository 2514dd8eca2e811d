"""The routing-policy environment of a server: its client classifiers and where they place clients.

Built once at startup from the config (``geoip_database``, ``latency``, ``cidr_collections``);
every snapshot carries the classifier blobs and every compile reads the same environment, with
the health-check slots of the moment (``with_health_slots``).

Classifier order in the snapshot: the geolocation classifier (the MaxMind database without
coordinates: one class per country/subdivision, so a geolocation group has few distinct chains),
the geoproximity classifier (the same database with coordinates, only when it has them), the
latency networks, then one per CIDR collection in config order.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from fastdns.geo.cidr import CidrCollection
from fastdns.geo.latency import LatencyTable
from fastdns.geo.mmdb import load_mmdb
from fastdns.policy import ClassifiedLocations, PolicyEnvironment

log = logging.getLogger("fastdns")

__all__ = ["MAX_CLASSIFIERS", "build_environment", "with_health_slots"]

MAX_CLASSIFIERS = 256  # ImgGroup.classifier is one octet


def build_environment(
    geoip_database: Path | None,
    latency: LatencyTable | None,
    cidr_collections: Mapping[str, CidrCollection],
) -> PolicyEnvironment:
    """The environment of a server configured with these (all optional) location sources."""
    classifiers: list[bytes] = []
    geolocation = geoproximity = None
    if geoip_database is not None:
        database = load_mmdb(geoip_database)
        countries = database.without_coordinates()
        classifiers.append(countries.classifier.to_bytes())
        geolocation = ClassifiedLocations(0, countries.locations)
        if any(location.has_coordinates for location in database.locations):
            classifiers.append(database.classifier.to_bytes())
            geoproximity = ClassifiedLocations(1, database.locations)
        log.info(
            "geo database %s: %d locations, %d with coordinates",
            geoip_database,
            len(countries.locations),
            len(database.locations) if geoproximity else 0,
        )
    latency_entry = None
    if latency is not None:
        latency_entry = (len(classifiers), latency)
        classifiers.append(latency.classifier.to_bytes())
    collections: dict[str, tuple[int, CidrCollection]] = {}
    for collection_id, collection in cidr_collections.items():
        collections[collection_id] = (len(classifiers), collection)
        classifiers.append(collection.classifier.to_bytes())
    if len(classifiers) > MAX_CLASSIFIERS:
        raise ValueError(f"{len(classifiers)} client classifiers; at most {MAX_CLASSIFIERS}")
    return PolicyEnvironment(
        classifiers=classifiers,
        geolocation=geolocation,
        geoproximity=geoproximity,
        latency=latency_entry,
        cidr_collections=collections,
    )


def with_health_slots(
    env: PolicyEnvironment, slots: Mapping[str, int] | Callable[[str], int | None]
) -> PolicyEnvironment:
    """``env`` reading health checks' table slots from ``slots`` (ID -> slot)."""
    lookup = slots.get if isinstance(slots, Mapping) else slots
    return dataclasses.replace(env, health_slot=lookup)
