"""The ``[tsig_keys]`` and ``[transfer]`` sections of the server config file.

```toml
[tsig_keys."xfr.example."]          # the key's name, as secondaries know it
algorithm = "hmac-sha256"           # or hmac-sha512 (RFC 8945 §6)
secret = "base64 secret"            # never logged

[transfer]                          # every zone's default
allow = ["127.0.0.0/8", "::1/128"]  # who may transfer (CIDRs); unset: any address, if keys is set
keys = ["xfr.example."]             # when set, a transfer must be signed with one of these
notify = ["127.0.0.1:5300"]         # secondaries sent NOTIFY (RFC 1996) after a serial change
notify_key = "xfr.example."         # sign those NOTIFY messages (optional)

[transfer.zones."example.com"]      # per zone: any of the four above, replacing the default
notify = ["127.0.0.1:5301"]
```

With neither ``allow`` nor ``keys`` for a zone, nobody may transfer it (REFUSED).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import dns.exception
import dns.name
import dns.tsig

__all__ = [
    "ALGORITHMS",
    "NotifyTarget",
    "SecondaryConfig",
    "SerialConfig",
    "TransferConfig",
    "TransferPolicy",
    "TsigKeySpec",
    "UpdateConfig",
    "UpdatePolicy",
    "check_key_references",
    "parse_secondary",
    "parse_serial",
    "parse_transfer",
    "parse_tsig_keys",
    "parse_update",
    "update_allowed",
]

# RFC 8945 §6: the algorithms implementations must (SHA-256) and may (SHA-512) support.
ALGORITHMS = {"hmac-sha256": dns.tsig.HMAC_SHA256, "hmac-sha512": dns.tsig.HMAC_SHA512}
POLICY_FIELDS = ("allow", "keys", "notify", "notify_key")
DNS_PORT = 53


@dataclass(frozen=True)
class TsigKeySpec:
    """One TSIG key of the config: its name (absolute, lower case), algorithm and secret."""

    name: dns.name.Name
    algorithm: dns.name.Name
    secret: bytes = field(repr=False)

    def key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, self.algorithm)


@dataclass(frozen=True)
class NotifyTarget:
    """A secondary to NOTIFY: address and port (53 by default)."""

    host: str
    port: int = DNS_PORT

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class TransferPolicy:
    """Who may transfer a zone and whom to NOTIFY. ``None`` fields are unset (the global
    default applies to a zone's policy)."""

    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = None
    keys: tuple[dns.name.Name, ...] | None = None
    notify: tuple[NotifyTarget, ...] | None = None
    notify_key: dns.name.Name | None = None

    def over(self, default: TransferPolicy) -> TransferPolicy:
        """This policy with its unset fields taken from ``default``."""
        return replace(
            self,
            **{
                name: getattr(default, name)
                for name in POLICY_FIELDS
                if getattr(self, name) is None
            },
        )


@dataclass(frozen=True)
class TransferConfig:
    """The ``[transfer]`` section: a default policy and per-zone policies."""

    default: TransferPolicy = TransferPolicy()
    zones: Mapping[dns.name.Name, TransferPolicy] = field(default_factory=dict)

    def for_zone(self, origin: dns.name.Name) -> TransferPolicy:
        zone = self.zones.get(origin)
        return zone.over(self.default) if zone is not None else self.default

    def key_names(self) -> set[dns.name.Name]:
        """Every key name the section refers to."""
        names = set()
        for policy in (self.default, *self.zones.values()):
            names.update(policy.keys or ())
            if policy.notify_key is not None:
                names.add(policy.notify_key)
        return names


def _key_name(text: object) -> dns.name.Name:
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected a key name, got {text!r}")
    try:
        return dns.name.from_text(text).canonicalize()
    except dns.exception.DNSException as exc:
        raise ValueError(f"key name {text!r}: {exc}") from None


def parse_tsig_keys(value: object) -> dict[dns.name.Name, TsigKeySpec]:
    """``{name: {algorithm = ..., secret = ...}}`` -> {key name: TsigKeySpec}. Errors never
    quote a secret."""
    if not isinstance(value, dict):
        raise ValueError('expected tables like [tsig_keys."name"] algorithm = ... secret = ...')
    keys: dict[dns.name.Name, TsigKeySpec] = {}
    for text, entry in value.items():
        name = _key_name(text)
        if not isinstance(entry, dict) or set(entry) != {"algorithm", "secret"}:
            raise ValueError(f"TSIG key {text}: a table with exactly algorithm and secret")
        algorithm = ALGORITHMS.get(str(entry["algorithm"]).lower())
        if algorithm is None:
            raise ValueError(
                f"TSIG key {text}: algorithm must be one of {', '.join(ALGORITHMS)}, "
                f"got {entry['algorithm']!r}"
            )
        try:
            secret = base64.b64decode(str(entry["secret"]), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"TSIG key {text}: the secret is not valid base64") from None
        if len(secret) < 16:
            raise ValueError(f"TSIG key {text}: the secret must be at least 16 octets")
        if name in keys:
            raise ValueError(f"TSIG key {text} is listed twice")
        keys[name] = TsigKeySpec(name, algorithm, secret)
    return keys


def _networks(value: object) -> tuple:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"allow: expected a list of addresses or CIDRs, got {value!r}")
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"allow: {exc}") from None


def _notify_target(text: object) -> NotifyTarget:
    """``127.0.0.1``, ``127.0.0.1:5300``, ``::1`` or ``[::1]:5300``."""
    if not isinstance(text, str):
        raise ValueError(f"notify: expected an address like 127.0.0.1:53, got {text!r}")
    host, port = text, DNS_PORT
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"notify: {text!r}: expected [IPv6]:PORT")
        port_text = rest[1:] or str(DNS_PORT)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        port_text = str(DNS_PORT)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"notify: {text!r}: not an IP address") from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"notify: {text!r}: the port must be a number from 1 to 65535")
    port = int(port_text)
    return NotifyTarget(str(address), port)


def _fields(value: object, where: str, known: tuple[str, ...]) -> dict[str, object]:
    """The access-policy settings of one table (``allow``, ``keys``, ``notify``,
    ``notify_key``, as far as ``known`` admits them), parsed; unset ones left out."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a table")
    unknown = set(value) - set(known)
    if unknown:
        raise ValueError(
            f"{where}: unknown setting {sorted(unknown)[0]!r} (known: {', '.join(known)})"
        )
    fields: dict[str, object] = {}
    if "allow" in value:
        fields["allow"] = _networks(value["allow"])
    if "keys" in value:
        fields["keys"] = tuple(_key_name(k) for k in _listed(value["keys"], where, "keys"))
    if "notify" in value:
        targets = _listed(value["notify"], where, "notify")
        fields["notify"] = tuple(_notify_target(t) for t in targets)
    if "notify_key" in value:
        fields["notify_key"] = _key_name(value["notify_key"])
    return fields


def _listed(value: object, where: str, name: str) -> list:
    """A setting that takes a list, or one item alone."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ValueError(f"{where}: {name}: expected a list")
    return value


def _per_zone(value: object, section: str, parse: Callable[[object, str], object]):
    """``(default, {origin: per-zone value})`` of a section whose ``zones`` subtables override
    its own settings zone by zone; ``parse(table, where)`` reads one table."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a table [{section}]")
    value = dict(value)
    zones_value = value.pop("zones", {})
    default = parse(value, section)
    if not isinstance(zones_value, dict):
        raise ValueError(f'{section}.zones: expected tables like [{section}.zones."example.com"]')
    zones = {}
    for text, entry in zones_value.items():
        try:
            origin = dns.name.from_text(text)
        except dns.exception.DNSException as exc:
            raise ValueError(f"{section}.zones: {text!r}: {exc}") from None
        zones[origin] = parse(entry, f"{section}.zones.{text}")
    return default, zones


def _policy(value: object, where: str) -> TransferPolicy:
    return TransferPolicy(**_fields(value, where, POLICY_FIELDS))  # type: ignore[arg-type]


def parse_transfer(value: object) -> TransferConfig:
    """The ``[transfer]`` table -> ``TransferConfig``."""
    return TransferConfig(*_per_zone(value, "transfer", _policy))


def check_key_references(
    transfer: TransferConfig, keys: Mapping[dns.name.Name, TsigKeySpec]
) -> None:
    """``ValueError`` when ``[transfer]`` names a key that ``[tsig_keys]`` does not define."""
    missing = sorted(transfer.key_names() - set(keys))
    if missing:
        raise ValueError(f"TSIG key {missing[0]} is not defined in [tsig_keys]")


# -- [update]: who may change a hosted zone with RFC 2136 UPDATE

UPDATE_FIELDS = ("allow", "keys")


@dataclass(frozen=True)
class UpdatePolicy:
    """Who may UPDATE a zone: ``keys`` it must be signed with (unset or empty: nobody) and,
    optionally, the addresses it must come from. ``None`` fields are unset."""

    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = None
    keys: tuple[dns.name.Name, ...] | None = None

    def over(self, default: UpdatePolicy) -> UpdatePolicy:
        return replace(
            self,
            **{n: getattr(default, n) for n in UPDATE_FIELDS if getattr(self, n) is None},
        )


@dataclass(frozen=True)
class UpdateConfig:
    """The ``[update]`` section:

    ```toml
    [update]                            # every hosted zone's default
    keys = ["update.example."]          # an UPDATE must be signed with one of these
    allow = ["127.0.0.0/8"]             # and come from here (optional)

    [update.zones."example.com"]        # per zone: either of the two, replacing the default
    keys = ["other.example."]
    ```

    Without keys, nobody may update a zone (REFUSED): unsigned updates are never accepted.
    """

    default: UpdatePolicy = UpdatePolicy()
    zones: Mapping[dns.name.Name, UpdatePolicy] = field(default_factory=dict)

    def for_zone(self, origin: dns.name.Name) -> UpdatePolicy:
        zone = self.zones.get(origin)
        return zone.over(self.default) if zone is not None else self.default

    def key_names(self) -> set[dns.name.Name]:
        names = set()
        for policy in (self.default, *self.zones.values()):
            names.update(policy.keys or ())
        return names


def _update_policy(value: object, where: str) -> UpdatePolicy:
    return UpdatePolicy(**_fields(value, where, UPDATE_FIELDS))  # type: ignore[arg-type]


def parse_update(value: object) -> UpdateConfig:
    """The ``[update]`` table -> ``UpdateConfig``."""
    return UpdateConfig(*_per_zone(value, "update", _update_policy))


def update_allowed(policy: UpdatePolicy, peer: str, key_name: dns.name.Name | None) -> bool:
    """Whether an UPDATE from ``peer`` signed with the (verified) key ``key_name`` (None:
    unsigned) may change a zone under ``policy``."""
    if not policy.keys or key_name is None or key_name not in policy.keys:
        return False
    if policy.allow is None:
        return True
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in policy.allow)


# -- [serial]: how a hosted zone's SOA serial moves on a change

SERIAL_POLICIES = ("increment", "unixtime")


@dataclass(frozen=True)
class SerialConfig:
    """The ``[serial]`` section:

    ```toml
    [serial]
    policy = "unixtime"                 # every hosted zone's default; "increment" if unset

    [serial.zones."example.com"]
    policy = "increment"
    ```

    ``increment``: the serial before the change plus one. ``unixtime``: the time of the change
    in seconds since 1970, or the serial before plus one when that would not be later (RFC 1982
    §3.2: several changes in one second, a serial set ahead of the clock). Either way the
    serial only moves forward, and a change batch that sets a later serial itself keeps it.
    Zone files keep the serial their file says.
    """

    default: str = "increment"
    zones: Mapping[dns.name.Name, str] = field(default_factory=dict)

    def for_zone(self, origin: dns.name.Name) -> str:
        return self.zones.get(origin, self.default)


def _serial_policy(value: object, where: str) -> str:
    if not isinstance(value, dict) or set(value) - {"policy"}:
        raise ValueError(f'{where}: expected a table with policy = "increment" or "unixtime"')
    policy = value.get("policy", "increment")
    if policy not in SERIAL_POLICIES:
        raise ValueError(f'{where}: policy must be "increment" or "unixtime", got {policy!r}')
    return policy


def parse_serial(value: object) -> SerialConfig:
    """The ``[serial]`` table -> ``SerialConfig``."""
    return SerialConfig(*_per_zone(value, "serial", _serial_policy))


@dataclass(frozen=True)
class SecondaryConfig:
    """One secondary zone: its primaries, in the order to ask them, and its TSIG key."""

    origin: dns.name.Name
    primaries: tuple[NotifyTarget, ...]
    key: dns.name.Name | None = None


def parse_secondary(value: object) -> dict[dns.name.Name, SecondaryConfig]:
    """The ``[secondary]`` section: ``{"zones": {origin: {"primaries": [...], "key": ...}}}``."""
    if not isinstance(value, Mapping) or set(value) - {"zones"}:
        raise ValueError('expected a table with "zones" (one table per secondary zone)')
    zones = value.get("zones", {})
    if not isinstance(zones, Mapping):
        raise ValueError("secondary.zones: expected a table of zones")
    out: dict[dns.name.Name, SecondaryConfig] = {}
    for text, entry in zones.items():
        try:
            origin = dns.name.from_text(text).canonicalize()
        except dns.exception.DNSException as exc:
            raise ValueError(f"secondary.zones.{text}: not a domain name ({exc})") from None
        if not isinstance(entry, Mapping) or set(entry) - {"primaries", "key"}:
            raise ValueError(f"secondary.zones.{text}: expected primaries and an optional key")
        primaries = entry.get("primaries")
        if isinstance(primaries, str) or not isinstance(primaries, list) or not primaries:
            raise ValueError(f"secondary.zones.{text}.primaries: a non-empty list of addresses")
        targets = tuple(_notify_target(item) for item in primaries)
        key = _key_name(entry["key"]) if entry.get("key") is not None else None
        out[origin] = SecondaryConfig(origin, targets, key)
    return out
