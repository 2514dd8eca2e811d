"""``fastdns zone list|import|export|apply``: hosted zones for people without the AWS tools.

The commands open the server's state database directly (``--state``, default ``fastdns.db``;
or the ``state`` of ``--config``). A running server notices their writes within a second and
serves them (``Store.external_changes``). ``apply`` takes the JSON document
``aws route53 change-resource-record-sets --change-batch file://...`` takes and goes through the
same checks as the API's ChangeResourceRecordSets.

Exit status: 0 done, 1 refused (zone errors, an invalid change batch, no such zone), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(commands) -> None:
    zone = commands.add_parser(
        "zone",
        help="list, import, export and change hosted zones",
        description="Work on the hosted zones in the state database (what the API manages).",
    )
    actions = zone.add_subparsers(dest="action", required=True, metavar="ACTION")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--state", metavar="FILE", help="state database (default fastdns.db)")
        parser.add_argument("--config", metavar="FILE", help="take state from this config file")

    listing = actions.add_parser("list", help="list hosted zones")
    common(listing)
    listing.set_defaults(func=_list)

    importing = actions.add_parser("import", help="create a hosted zone from a zone file")
    importing.add_argument("file", metavar="FILE", help="RFC 1035 master file")
    importing.add_argument("--origin", metavar="NAME", help="zone name (default: from FILE)")
    importing.add_argument("--comment", metavar="TEXT", help="hosted zone comment")
    importing.add_argument(
        "--replace",
        action="store_true",
        help="if the hosted zone exists, replace all its record sets with the file's",
    )
    common(importing)
    importing.set_defaults(func=_import)

    exporting = actions.add_parser("export", help="print a hosted zone as a zone file")
    exporting.add_argument("zone", metavar="ZONE", help="hosted zone ID or name")
    common(exporting)
    exporting.set_defaults(func=_export)

    applying = actions.add_parser(
        "apply", help="apply a change batch (the JSON of aws route53 change-resource-record-sets)"
    )
    applying.add_argument("zone", metavar="ZONE", help="hosted zone ID or name")
    applying.add_argument("file", metavar="FILE", help='change batch JSON: {"Changes": [...]}')
    common(applying)
    applying.set_defaults(func=_apply)

    denial = actions.add_parser(
        "dnssec-denial",
        help="show or set how a signed hosted zone denies existence (compact or nsec3)",
    )
    denial.add_argument("zone", metavar="ZONE", help="hosted zone ID or name")
    denial.add_argument(
        "mode", nargs="?", choices=("compact", "nsec3"),
        help="compact: Route 53's NSEC made per query (the default); nsec3: an NSEC3 chain",
    )  # fmt: skip
    common(denial)
    denial.set_defaults(func=_dnssec_denial)


def _open_store(args):
    from fastdns.config import DEFAULT_STATE, ConfigError, read_config_file
    from fastdns.store import Store
    from fastdns.xfr.config import SerialConfig, parse_serial

    path, serial = args.state, SerialConfig()
    if args.config is not None:
        try:
            values = read_config_file(args.config)
            serial = parse_serial(values.get("serial", {}))
        except (ConfigError, ValueError) as exc:
            raise _Usage(str(exc)) from None
        if path is None:
            path = values.get("state")
    store = Store(path or DEFAULT_STATE)
    store.serial_policy = serial.for_zone  # the server's serial policy for these changes too
    return store


class _Usage(Exception):
    pass


def _run(args, body) -> int:
    from fastdns.route53.errors import ApiError
    from fastdns.store import StoreError

    try:
        store = _open_store(args)
    except (StoreError, _Usage) as exc:
        print(f"fastdns zone: {exc}", file=sys.stderr)
        return 2
    try:
        return body(store)
    except ApiError as exc:
        print(f"fastdns zone {args.action}: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _list(args) -> int:
    def body(store) -> int:
        for zone in store.hosted_zones():
            comment = f"  {zone.comment}" if zone.comment else ""
            print(f"{zone.id}  {zone.name}  {zone.record_set_count} record sets{comment}")
        return 0

    return _run(args, body)


def _import(args) -> int:
    from fastdns.model import ZoneLoadError
    from fastdns.route53.names import name_text
    from fastdns.route53.tozone import record_sets_from_zone
    from fastdns.zonefile import load_zone_file

    try:
        zone = load_zone_file(Path(args.file), args.origin)
    except ZoneLoadError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    record_sets, skipped = record_sets_from_zone(zone)
    for reason in skipped:
        print(f"skipped: {reason}", file=sys.stderr)

    def body(store) -> int:
        from fastdns.route53.errors import ApiError

        name = name_text(zone.origin)
        existing = {z.name: z for z in store.hosted_zones()}.get(name)
        if existing is not None:
            if not args.replace:
                raise ApiError(
                    "HostedZoneAlreadyExists",
                    f"hosted zone {existing.id} is {name}; add --replace to replace its records",
                )
            change = store.replace_record_sets(existing.id, record_sets, args.comment)
            print(
                f"{existing.id}  {name}  replaced: {len(record_sets)} record sets, change "
                f"{change.id}"
            )
            return 0
        reference = f"fastdns-import-{uuid.uuid4()}"
        ns = next((r for r in record_sets if r.type == "NS" and r.name == zone.origin), None)
        servers = tuple(rdata.target.to_text() for rdata in ns.rdatas) if ns else ()
        created, change = store.create_hosted_zone(
            name, reference, args.comment, servers, record_sets
        )
        print(f"{created.id}  {name}  imported: {len(record_sets)} record sets, change {change.id}")
        return 0

    return _run(args, body)


def _export(args) -> int:
    from fastdns.route53.tozone import zone_file_text

    def body(store) -> int:
        zone = store.find_hosted_zone(args.zone)
        sys.stdout.write(zone_file_text(zone.origin, store.record_sets(zone.id).values()))
        return 0

    return _run(args, body)


def _dnssec_denial(args) -> int:
    from fastdns.dnssec.keystore import KeyStore
    from fastdns.route53.errors import InvalidInput
    from fastdns.route53.policycheck import signed_zone_problems

    def body(store) -> int:
        zone = store.find_hosted_zone(args.zone)
        keys = KeyStore(store)
        if args.mode == "nsec3" and keys.signing(zone.id):
            problems = signed_zone_problems(store.record_sets(zone.id).values())
            if problems:
                raise InvalidInput("Invalid request: " + "; ".join(problems))
        if args.mode is not None:
            keys.set_denial(zone.id, args.mode)
        print(keys.denial(zone.id))
        return 0

    return _run(args, body)


def _apply(args) -> int:
    from fastdns.health.store import HealthCheckStore
    from fastdns.route53.changebatch import parse_changes
    from fastdns.route53.errors import InvalidInput
    from fastdns.route53.policycheck import policy_problem

    try:
        batch = json.loads(Path(args.file).read_text())
    except (OSError, ValueError) as exc:
        print(f"fastdns zone apply: {args.file}: {exc}", file=sys.stderr)
        return 2
    if isinstance(batch, dict) and "ChangeBatch" in batch:  # the whole request, also accepted
        batch = batch["ChangeBatch"]

    def body(store) -> int:
        zone = store.find_hosted_zone(args.zone)
        changes = parse_changes(batch)
        comment = batch.get("Comment") if isinstance(batch, dict) else None
        if comment is not None and not isinstance(comment, str):
            raise InvalidInput("Invalid request: Comment must be a string")
        health_checks = HealthCheckStore(store)
        change, _result = store.change_record_sets(
            zone.id,
            changes,
            comment,
            health_checks.health_check_exists,
            lambda rrset: policy_problem(rrset, None),
        )
        info = {
            "Id": f"/change/{change.id}",
            "Status": change.status,
            "SubmittedAt": change.submitted_at,
        }
        if comment:
            info["Comment"] = comment
        print(json.dumps({"ChangeInfo": info}, indent=4))
        return 0

    return _run(args, body)
