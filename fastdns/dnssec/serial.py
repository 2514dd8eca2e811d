"""The SOA serial of a signed hosted zone moves when its DNSSEC data does.

Enabling or disabling signing, a KSK status change, a ZSK rollover step and re-signing change
what the zone serves (DNSKEY, RRSIG, NSEC3 records) without changing any record set. A secondary
only transfers a zone whose serial has moved (RFC 1996 §3.7; RFC 1034 §4.3.5), so without a new
serial it would keep the old key set and, in the end, expired signatures. ``record_dnssec_change``
moves the serial forward (the zone's serial policy, RFC 1982) in the change row it records, so
the recompile that follows serves the new serial and NOTIFY goes out as for any other change.

The row is marked ``"dnssec"`` (the reason) in its diff: IXFR from the change history
(``fastdns.xfr.ixfr``) cannot carry such a change -- the difference is in records the history
does not hold -- and falls back to the whole zone for a client from before it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastdns.store import ChangeInfo, Store

__all__ = ["DNSSEC_DIFF_KEY", "record_dnssec_change"]

DNSSEC_DIFF_KEY = "dnssec"


def record_dnssec_change(store: Store, zone_id: str, reason: str) -> ChangeInfo:
    """Inside ``store.transaction()``: record a change of ``zone_id``'s DNSSEC data
    (``reason``: "enable", "disable", "key", "rollover", "resign") that moves its SOA serial
    forward; the change (PENDING until the recompiled zone is served)."""
    from fastdns.store import _bumped_soa

    zone = store.get_hosted_zone(zone_id)
    current = store.record_sets(zone_id)
    old = current.get((zone.name, "SOA", ""))
    new = _bumped_soa(old, old, store._policy(zone)) if old is not None else None
    if new is None:
        change = store._add_change(zone_id, None, None, [], [])
    else:
        store._insert(zone_id, new)
        change = store._add_change(zone_id, None, new.rdatas[0].serial, [old], [new])
    diff = {"deleted": [old.data] if new else [], "added": [new.data] if new else []}
    diff[DNSSEC_DIFF_KEY] = reason
    store.db.execute(
        "UPDATE changes SET diff=? WHERE id=?", (json.dumps(diff, separators=(",", ":")), change.id)
    )
    # The cached record sets are read again (after a rollback too: then they are the old ones).
    store._record_sets.pop(zone_id, None)
    return change
