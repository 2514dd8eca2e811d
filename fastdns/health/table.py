"""The health table: every health check's status in shared memory, one byte per slot.

Contract between the supervisor (the only writer) and the workers (readers, the C hot path):

- The table is a memfd of exactly ``capacity`` bytes (``DEFAULT_CAPACITY`` = 65,536), sealed
  against growing and shrinking (``F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL``), so a mapping of
  the whole file can never fault.
- Byte ``slot`` is the status of the health check that owns that slot: ``1`` healthy, ``0``
  unhealthy. It is the status routing uses: Inverted and Disabled already applied. Slots that
  no health check owns read ``1``, so a stale reference fails open.
- Every health check gets a slot when it is created (the smallest free one, kept in the store
  with the check: ``HealthCheckStore.health_check_slot(id)``) and gives it back when deleted;
  a slot never changes while its check exists. Compiled zone images refer to slots, not to
  health check IDs, so a status change needs no recompile.
- Writes are single bytes through a shared mapping: a reader sees the old or the new value,
  never anything else, with no lock. The per-query read is ``byte[slot] != 0``; there is no
  ordering between different slots (each is an independent status).

The supervisor creates a ``HealthTable`` and passes ``table.fd`` to each worker (with
``socket.send_fds``, like the snapshot memfd); a worker calls ``open_health_table(fd)`` and
gives the read-only ``memoryview`` to the extension.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os

__all__ = ["DEFAULT_CAPACITY", "HealthTable", "HealthTableError", "open_health_table"]

DEFAULT_CAPACITY = 65536
MEMFD_NAME = "fastdns-health"
HEALTHY = 1
UNHEALTHY = 0
REQUIRED_SEALS = fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL


class HealthTableError(Exception):
    """A descriptor is not a health table (wrong size or not sealed)."""


class HealthTable:
    """The supervisor's side: ``capacity`` status bytes in a memfd (``fd``), all healthy."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("a health table has at least one slot")
        self.capacity = capacity
        self.fd = os.memfd_create(MEMFD_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(self.fd, capacity)
            self._mapping = mmap.mmap(self.fd, capacity, flags=mmap.MAP_SHARED)
            self._mapping.write(bytes([HEALTHY]) * capacity)
            fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, REQUIRED_SEALS)
        except BaseException:
            os.close(self.fd)
            raise

    def set(self, slot: int, healthy: bool) -> None:
        """Write the status of ``slot`` (``IndexError`` outside the table)."""
        if not 0 <= slot < self.capacity:
            raise IndexError(f"health table slot {slot} outside 0..{self.capacity - 1}")
        self._mapping[slot] = HEALTHY if healthy else UNHEALTHY

    def get(self, slot: int) -> bool:
        return self._mapping[slot] != UNHEALTHY

    def release(self, slot: int) -> None:
        """A slot whose health check is gone: back to healthy (the unused value)."""
        self.set(slot, True)

    def close(self) -> None:
        """Close the descriptor and the mapping (workers keep their own mappings)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(BufferError):
            self._mapping.close()


def open_health_table(fd: int) -> memoryview:
    """Map the health table in ``fd`` read-only: a ``memoryview`` of ``capacity`` bytes that
    follows the supervisor's writes. ``fd`` may be closed afterwards; the view keeps the
    mapping. ``HealthTableError`` if ``fd`` is not a sealed health table."""
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError as exc:
        raise HealthTableError(f"not a sealed memfd: {exc.strerror or exc}") from None
    if seals & REQUIRED_SEALS != REQUIRED_SEALS:
        raise HealthTableError(f"the health table is not sealed against resizing ({seals:#x})")
    size = os.fstat(fd).st_size
    if size < 1:
        raise HealthTableError("the health table is empty")
    mapping = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    return memoryview(mapping)
