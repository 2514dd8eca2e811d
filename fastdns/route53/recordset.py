"""A Route 53 resource record set: parsed, checked and written back in the API's own shape.

The shape is the one boto3 and ``aws route53 change-resource-record-sets --change-batch`` use
(``{"Name": ..., "Type": ..., "TTL": ..., "ResourceRecords": [{"Value": ...}], ...}``); the XML
codec produces the same dict from a request body, and the store keeps it as JSON. ``from_api``
checks one record set on its own (names, types, ranges, which fields go together, record
values); rules that involve other record sets of the zone are in ``fastdns.route53.changebatch``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from fastdns.model import POLICY_FIELDS
from fastdns.route53.errors import InvalidInput
from fastdns.route53.names import InvalidName, name_from_text, name_text

__all__ = [
    "POLICY_FIELDS",
    "SUPPORTED_TYPES",
    "RecordSetKey",
    "ResourceRecordSet",
    "describe",
    "parse_values",
]

# The record types Route 53 stores (its RRType enumeration, less the ones it has no data for).
SUPPORTED_TYPES = frozenset(
    [
        "A",
        "AAAA",
        "CAA",
        "CNAME",
        "DS",
        "HTTPS",
        "MX",
        "NAPTR",
        "NS",
        "PTR",
        "SOA",
        "SPF",
        "SRV",
        "SSHFP",
        "SVCB",
        "TLSA",
        "TXT",
    ]
)
MAX_TTL = 2_147_483_647  # RFC 2181 §8: 31 bits
MAX_VALUES = 400  # Route 53: values per record set
MAX_VALUE_LENGTH = 4000  # Route 53: characters per value
MAX_SET_IDENTIFIER = 128

# (name text, type, set identifier or "") -- what makes a record set unique in a zone.
RecordSetKey = tuple[str, str, str]


def describe(name: str, rtype: str, set_identifier: str | None = None) -> str:
    """Route 53's way of naming a record set in messages."""
    if set_identifier:
        return f"[name='{name}', type='{rtype}', set-identifier='{set_identifier}']"
    return f"[name='{name}', type='{rtype}']"


@dataclass(frozen=True)
class ResourceRecordSet:
    """One checked record set. ``data`` is its normalized API dict (what List returns);
    ``rdatas`` its values parsed (empty for an alias)."""

    name: dns.name.Name
    type: str
    data: dict
    rdatas: tuple[dns.rdata.Rdata, ...]

    @property
    def name_text(self) -> str:
        return self.data["Name"]

    @property
    def set_identifier(self) -> str | None:
        return self.data.get("SetIdentifier")

    @property
    def key(self) -> RecordSetKey:
        return (self.data["Name"], self.type, self.data.get("SetIdentifier") or "")

    @property
    def ttl(self) -> int | None:
        return self.data.get("TTL")

    @property
    def alias_target(self) -> dict | None:
        return self.data.get("AliasTarget")

    @property
    def policy(self) -> str | None:
        """Which routing-policy field this record set uses (``"Weight"``...), None if simple."""
        for field in POLICY_FIELDS:
            if field in self.data:
                return field
        return None

    def describe(self) -> str:
        return describe(self.data["Name"], self.type, self.set_identifier)

    def same_values(self, other: ResourceRecordSet) -> bool:
        """Route 53's DELETE test: every field equal, record values equal in any order."""
        mine = {k: v for k, v in self.data.items() if k != "ResourceRecords"}
        theirs = {k: v for k, v in other.data.items() if k != "ResourceRecords"}
        return mine == theirs and set(self.rdatas) == set(other.rdatas)

    @classmethod
    def from_api(
        cls, raw: object, parsed: tuple[dns.rdata.Rdata, ...] | None = None
    ) -> ResourceRecordSet:
        """Check an API record set dict; ``InvalidInput`` says what is wrong with it.
        ``parsed``: its values already parsed, when the values of ``raw`` are their
        ``to_text()`` (a zone file's record set, ``fastdns zone import``): every check is made
        but the values are not parsed a second time."""
        if not isinstance(raw, dict):
            raise InvalidInput("Invalid request: ResourceRecordSet must be a structure")
        return _Parser(raw, parsed).parse()

    @classmethod
    def from_store(cls, data: dict) -> ResourceRecordSet:
        """A record set as the store keeps it: ``data`` is a normalized dict that ``from_api``
        checked when it was written, so it is not checked again, and ``name`` and ``rdatas``
        are parsed when first read. Loading a hosted zone of a million record sets then costs
        the JSON, not a dnspython parse of every value (issue 8); most of them are only ever
        packed for the native compiler (fastdns.hostedcolumns), which reads their text."""
        rrset = object.__new__(cls)
        object.__setattr__(rrset, "type", data["Type"])
        object.__setattr__(rrset, "data", data)
        return rrset

    def __getattr__(self, field: str):
        # Only for a record set from_store made, on the first read of a field it left out.
        if field == "name":
            value = name_from_text(self.data["Name"])
        elif field == "rdatas":
            records = self.data.get("ResourceRecords")
            values = [record["Value"] for record in records] if records else []
            value = parse_values(self.type, values) if values else ()
        else:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {field!r}")
        object.__setattr__(self, field, value)
        return value

    def to_api(self) -> dict:
        """The API dict (a copy), as ListResourceRecordSets returns it."""
        data = dict(self.data)
        if "ResourceRecords" in data:
            data["ResourceRecords"] = [dict(r) for r in data["ResourceRecords"]]
        for field in ("AliasTarget", "GeoLocation", "CidrRoutingConfig"):
            if field in data:
                data[field] = dict(data[field])
        if "GeoProximityLocation" in data:
            location = dict(data["GeoProximityLocation"])
            if "Coordinates" in location:
                location["Coordinates"] = dict(location["Coordinates"])
            data["GeoProximityLocation"] = location
        return data


def parse_values(rtype: str, values: list[str]) -> tuple[dns.rdata.Rdata, ...]:
    """Parse record values of type ``rtype``; names in them are absolute with or without the
    final dot, as in Route 53. ``InvalidInput`` names the first bad value."""
    rdtype = dns.rdatatype.from_text(rtype)
    rdatas = []
    for value in values:
        try:
            rdata = dns.rdata.from_text(
                dns.rdataclass.IN, rdtype, value, origin=dns.name.root, relativize=False
            )
        except (dns.exception.DNSException, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            raise InvalidInput(
                f"Invalid Resource Record: FATAL problem: {reason} encountered with '{value}'"
            ) from None
        rdatas.append(rdata)
    return tuple(rdatas)


class _Parser:
    """Checks one record set dict field by field, building the normalized dict."""

    def __init__(self, raw: dict, parsed: tuple[dns.rdata.Rdata, ...] | None = None):
        self.raw = raw
        self.parsed = parsed
        self.out: dict = {}

    def where(self) -> str:
        raw = self.raw
        return (
            f"[Name={raw.get('Name')}, Type={raw.get('Type')}, "
            f"SetIdentifier={raw.get('SetIdentifier') or 'null'}]"
        )

    def parse(self) -> ResourceRecordSet:
        raw = self.raw
        unknown = set(raw) - _KNOWN_FIELDS
        if unknown:
            raise InvalidInput(f"Invalid request: unknown field {sorted(unknown)[0]!r}")
        try:
            name = name_from_text(raw.get("Name"))  # type: ignore[arg-type]
        except InvalidName as exc:
            raise InvalidInput(f"Invalid request: DNS name {exc}") from None
        self.out["Name"] = name_text(name)
        rtype = raw.get("Type")
        if not isinstance(rtype, str) or rtype.upper() not in SUPPORTED_TYPES:
            raise InvalidInput(f"Invalid request: unsupported record type {rtype!r}")
        rtype = rtype.upper()
        self.out["Type"] = rtype
        self.parse_policy()
        rdatas = self.parse_data(rtype)
        if raw.get("HealthCheckId") is not None:
            self.out["HealthCheckId"] = self.string("HealthCheckId", 64)
        return ResourceRecordSet(name, rtype, self.out, rdatas)

    def parse_policy(self) -> None:
        raw = self.raw
        present = [field for field in POLICY_FIELDS if raw.get(field) is not None]
        identifier = raw.get("SetIdentifier")
        if identifier is not None:
            self.out["SetIdentifier"] = self.string("SetIdentifier", MAX_SET_IDENTIFIER)
            if len(present) != 1:
                found = "none" if not present else ", ".join(present)
                raise InvalidInput(
                    "Invalid request: Expected exactly one of [Weight, Region, Failover, "
                    "GeoLocation, MultiValueAnswer, GeoProximityLocation, or CidrRoutingConfig], "
                    f"but found {found} in Change with {self.where()}"
                )
        elif present:
            raise InvalidInput(
                f"Invalid request: Missing field 'SetIdentifier' in Change with {self.where()}"
            )
        for field in present:
            getattr(self, "policy_" + field)()

    def parse_data(self, rtype: str) -> tuple[dns.rdata.Rdata, ...]:
        raw = self.raw
        has_alias = raw.get("AliasTarget") is not None
        has_records = raw.get("ResourceRecords") is not None or raw.get("TTL") is not None
        has_traffic = raw.get("TrafficPolicyInstanceId") is not None
        complete_records = raw.get("ResourceRecords") is not None and raw.get("TTL") is not None
        if has_alias + has_records + has_traffic != 1 or (has_records and not complete_records):
            raise InvalidInput(
                "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and "
                "ResourceRecords], or TrafficPolicyInstanceId], but found "
                f"{'none' if not (has_alias or has_records or has_traffic) else 'a mix'} "
                f"in Change with {self.where()}"
            )
        if has_traffic:
            raise InvalidInput("Invalid request: traffic policy instances are not supported yet")
        if has_alias:
            self.alias_target()
            return ()
        self.out["TTL"] = self.integer("TTL", 0, MAX_TTL)
        records = raw["ResourceRecords"]
        if not isinstance(records, list) or not records:
            raise InvalidInput(f"Invalid request: ResourceRecords is empty in {self.where()}")
        if len(records) > MAX_VALUES:
            raise InvalidInput(f"Invalid request: more than {MAX_VALUES} values in {self.where()}")
        values = []
        for record in records:
            value = record.get("Value") if isinstance(record, dict) else None
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(
                    f"Invalid request: a ResourceRecord without a Value in {self.where()}"
                )
            if len(value) > MAX_VALUE_LENGTH:
                raise InvalidInput(
                    f"Invalid request: a value longer than {MAX_VALUE_LENGTH} characters in "
                    f"{self.where()}"
                )
            values.append(value.strip())
        rdatas = parse_values(rtype, values) if self.parsed is None else self.parsed
        if len(set(rdatas)) != len(rdatas):
            raise InvalidInput(
                f"Invalid Resource Record: FATAL problem: DuplicateRecord encountered with "
                f"'{values[0]}' in {self.where()}"
            )
        self.out["ResourceRecords"] = [{"Value": value} for value in values]
        return rdatas

    # -- fields

    def string(self, field: str, max_length: int, raw: dict | None = None) -> str:
        value = (self.raw if raw is None else raw).get(field)
        if not isinstance(value, str) or not value or len(value) > max_length:
            raise InvalidInput(
                f"Invalid request: {field} must be a string of 1 to {max_length} characters "
                f"in {self.where()}"
            )
        return value

    def integer(self, field: str, low: int, high: int, raw: dict | None = None) -> int:
        value = (self.raw if raw is None else raw).get(field)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(
                f"Invalid request: {field} must be a whole number from {low} to {high}, got "
                f"{value!r} in {self.where()}"
            )
        return value

    def boolean(self, field: str, raw: dict | None = None) -> bool:
        value = (self.raw if raw is None else raw).get(field)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise InvalidInput(f"Invalid request: {field} must be true or false in {self.where()}")
        return value

    def alias_target(self) -> None:
        raw = self.raw["AliasTarget"]
        if not isinstance(raw, dict):
            raise InvalidInput(
                f"Invalid request: AliasTarget must be a structure in {self.where()}"
            )
        zone_id = self.string("HostedZoneId", 32, raw)
        try:
            target = name_text(name_from_text(raw.get("DNSName")))  # type: ignore[arg-type]
        except InvalidName as exc:
            raise InvalidInput(f"Invalid request: AliasTarget DNSName {exc}") from None
        self.out["AliasTarget"] = {
            "HostedZoneId": zone_id.rsplit("/", 1)[-1],
            "DNSName": target,
            "EvaluateTargetHealth": self.boolean("EvaluateTargetHealth", raw),
        }

    def policy_Weight(self) -> None:
        self.out["Weight"] = self.integer("Weight", 0, 255)

    def policy_Region(self) -> None:
        self.out["Region"] = self.string("Region", 64)

    def policy_Failover(self) -> None:
        value = self.raw["Failover"]
        if value not in ("PRIMARY", "SECONDARY"):
            raise InvalidInput(
                f"Invalid request: Failover must be PRIMARY or SECONDARY in {self.where()}"
            )
        self.out["Failover"] = value

    def policy_MultiValueAnswer(self) -> None:
        self.out["MultiValueAnswer"] = self.boolean("MultiValueAnswer")

    def policy_GeoLocation(self) -> None:
        raw = self.raw["GeoLocation"]
        if not isinstance(raw, dict):
            raise InvalidInput(
                f"Invalid request: GeoLocation must be a structure in {self.where()}"
            )
        location = {}
        for field, length in (("ContinentCode", 2), ("CountryCode", 2), ("SubdivisionCode", 3)):
            if raw.get(field) is not None:
                value = raw[field]
                if not isinstance(value, str) or not 1 <= len(value) <= length:
                    raise InvalidInput(
                        f"Invalid request: GeoLocation {field} {value!r} in {self.where()}"
                    )
                location[field] = value.upper() if value != "*" else value
        if not location:
            raise InvalidInput(f"Invalid request: an empty GeoLocation in {self.where()}")
        if "ContinentCode" in location and len(location) > 1:
            raise InvalidInput(
                "Invalid request: GeoLocation takes a ContinentCode or a CountryCode, not both, "
                f"in {self.where()}"
            )
        if "SubdivisionCode" in location and "CountryCode" not in location:
            raise InvalidInput(
                f"Invalid request: a SubdivisionCode needs a CountryCode in {self.where()}"
            )
        self.out["GeoLocation"] = location

    def policy_CidrRoutingConfig(self) -> None:
        raw = self.raw["CidrRoutingConfig"]
        if not isinstance(raw, dict):
            raise InvalidInput(
                f"Invalid request: CidrRoutingConfig must be a structure in {self.where()}"
            )
        self.out["CidrRoutingConfig"] = {
            "CollectionId": self.string("CollectionId", 36, raw),
            "LocationName": self.string("LocationName", 16, raw),
        }

    def policy_GeoProximityLocation(self) -> None:
        raw = self.raw["GeoProximityLocation"]
        if not isinstance(raw, dict):
            raise InvalidInput(
                f"Invalid request: GeoProximityLocation must be a structure in {self.where()}"
            )
        location: dict = {}
        for field in ("AWSRegion", "LocalZoneGroup"):
            if raw.get(field) is not None:
                location[field] = self.string(field, 64, raw)
        coordinates = raw.get("Coordinates")
        if coordinates is not None:
            if not isinstance(coordinates, dict):
                raise InvalidInput(f"Invalid request: Coordinates in {self.where()}")
            location["Coordinates"] = {
                "Latitude": _coordinate(coordinates.get("Latitude"), 90, self.where()),
                "Longitude": _coordinate(coordinates.get("Longitude"), 180, self.where()),
            }
        if sum(f in location for f in ("AWSRegion", "LocalZoneGroup", "Coordinates")) != 1:
            raise InvalidInput(
                "Invalid request: GeoProximityLocation takes exactly one of AWSRegion, "
                f"LocalZoneGroup or Coordinates in {self.where()}"
            )
        if raw.get("Bias") is not None:
            location["Bias"] = self.integer("Bias", -99, 99, raw)
        self.out["GeoProximityLocation"] = location


def _coordinate(value: object, limit: int, where: str) -> str:
    """Latitude/longitude as Route 53 keeps them: decimal text with at most 2 decimals."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"Invalid request: coordinate {value!r} in {where}") from None
    if not -limit <= number <= limit:
        raise InvalidInput(f"Invalid request: coordinate {value!r} out of range in {where}")
    return str(value).strip()


_KNOWN_FIELDS = frozenset(
    {
        "Name",
        "Type",
        "SetIdentifier",
        "TTL",
        "ResourceRecords",
        "AliasTarget",
        "HealthCheckId",
        "TrafficPolicyInstanceId",
        *POLICY_FIELDS,
    }
)
