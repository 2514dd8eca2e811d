"""A directory of zone files, one zone per ``<origin>.zone`` file."""

from __future__ import annotations

import os
from collections.abc import Mapping

import dns.name

from fastdns.image import name_key
from fastdns.model import Zone, ZoneError, ZoneLoadError
from fastdns.zonefile import ZONE_FILE_SUFFIX, load_zone_file, origin_from_file_name

__all__ = ["check_zone_file", "load_zone_dir", "zone_files"]


def load_zone_dir(path: str | os.PathLike[str]) -> tuple[list[Zone], list[ZoneError]]:
    """Load every ``<origin>.zone`` file directly in directory ``path``.

    The origin is the file name without ``.zone`` (a trailing dot is optional, so
    ``example.com.zone`` and ``example.com..zone`` both give ``example.com.``; ``..zone`` is the
    root zone). Other files (``$INCLUDE`` d parts, for instance) and subdirectories are ignored.
    Files are read in file-name order; a zone that fails to parse or validate is left out and
    its errors returned, and the other zones still load. A second file for an origin already
    seen is an error, whatever became of the first.

    :returns: the zones in DNSSEC canonical order of their origins, and every error sorted by
        file and line. A directory that cannot be listed gives one error at line 0.
    """
    files, errors = zone_files(path)
    zones: list[Zone] = []
    for file, origin in files:
        try:
            zones.append(load_zone_file(file, origin))
        except ZoneLoadError as e:
            errors.extend(e.errors)
    zones.sort(key=lambda zone: zone.origin)
    errors.sort(key=lambda e: (e.file, e.line, e.reason))
    return zones, errors


def zone_files(
    path: str | os.PathLike[str], known: Mapping[str, dns.name.Name] | None = None
) -> tuple[list[tuple[str, dns.name.Name]], list[ZoneError]]:
    """The ``<origin>.zone`` files of directory ``path`` in file-name order, each with its
    origin, and the errors of the others (see :func:`load_zone_dir`: a name that gives no
    origin, a second file for an origin, a directory that cannot be listed). ``known`` maps
    files to the origins an earlier listing gave them, which are taken as they are: a file's
    origin follows from its name alone, and parsing 100,000 names costs over a second."""
    directory = os.fspath(path)
    try:
        # scandir: the directory's entries say which are regular files (no stat for those).
        with os.scandir(directory) as listing:
            entries = sorted(
                (entry.name, entry.path)
                for entry in listing
                if entry.name.endswith(ZONE_FILE_SUFFIX) and entry.is_file()
            )
    except OSError as e:
        return [], [ZoneError(directory, 0, f"cannot read zone directory: {e.strerror}")]

    files: list[tuple[str, dns.name.Name]] = []
    errors: list[ZoneError] = []
    # Keyed by lower-cased labels: equal exactly when the names are (RFC 4343), and far cheaper
    # to hash than a dns.name.Name, which lower-cases every label on every hash.
    seen: dict[tuple[bytes, ...], str] = {}
    for _name, file in entries:
        origin = known.get(file) if known else None
        if origin is None:
            try:
                origin = origin_from_file_name(file)
            except ZoneLoadError as e:
                errors.extend(e.errors)
                continue
        assert origin is not None  # the name ends in .zone
        key = name_key(origin)
        if key in seen:
            errors.append(ZoneError(file, 0, f"zone {origin} is already loaded from {seen[key]}"))
            continue
        seen[key] = file
        files.append((file, origin))
    return files, errors


def check_zone_file(
    path: str | os.PathLike[str], origin: dns.name.Name | str | None = None
) -> list[ZoneError]:
    """Every problem :func:`fastdns.zonefile.load_zone_file` finds in one file; empty when the
    zone is good. ``origin`` defaults to the file name, then to the file's first ``$ORIGIN``.
    For the ``check-zone`` command, which prints ``str(error)`` for each.
    """
    try:
        load_zone_file(path, origin)
    except ZoneLoadError as e:
        return list(e.errors)
    return []
