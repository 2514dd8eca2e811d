"""Server settings: a TOML file and command-line flags merged into one frozen ``ServerConfig``.

The TOML file may name the keys in ``SETTINGS``; any other key is an error. A flag given on the
command line overrides the file. A relative ``zone_dir`` in a file is relative to that file's
folder, one given as a flag to the current directory. Every problem is a ``ConfigError`` whose
message names where the bad value came from (``--listen``, ``config.toml: udp_max_payload``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.name

from fastdns.geo.cidr import CidrCollection, GeoConfigError, parse_cidr_collections
from fastdns.geo.latency import LatencyTable, parse_latency
from fastdns.xfr.config import (
    SecondaryConfig,
    SerialConfig,
    TransferConfig,
    TsigKeySpec,
    UpdateConfig,
    check_key_references,
    parse_secondary,
    parse_serial,
    parse_transfer,
    parse_tsig_keys,
    parse_update,
)

DEFAULT_LISTEN = "127.0.0.1:5353"
DEFAULT_API_LISTEN = "127.0.0.1:8053"
DEFAULT_STATE = "fastdns.db"
# RFC 6761 §6.4: .invalid names cannot resolve, so an unconfigured delegation set is obvious.
DEFAULT_NAME_SERVERS = ("ns1.fastdns.invalid.", "ns2.fastdns.invalid.")
MAX_WORKERS = 1024
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(ValueError):
    """Settings that cannot be used; the message says which setting and why."""


@dataclass(frozen=True)
class ListenAddress:
    """One address to serve on, over both UDP and TCP."""

    host: str  # an IP literal, without brackets
    port: int
    family: int  # socket.AF_INET or socket.AF_INET6

    def __str__(self) -> str:
        if self.family == socket.AF_INET6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


# How each worker serves its UDP sockets (fastdns.transport): "thread", a native receive thread
# per socket that answers without the event loop; "loop", the event loop's reader callback.
# The first is the default: at 50k qps it costs 4 % less CPU per query than the loop, with a
# lower latency, and answers 3 % fewer queries at saturation (bench/compare_udp_receivers.py,
# bench/compare_servers.py --max; 2026-12-06).
UDP_RECEIVERS = ("thread", "loop")


@dataclass(frozen=True)
class ServerConfig:
    """Validated settings for ``fastdns serve``."""

    zone_dir: Path
    listen: tuple[ListenAddress, ...] = ()
    udp_max_payload: int = 1232  # largest UDP response, before EDNS negotiation (RFC 6891 §6.2.5)
    tcp_idle_timeout: float = 10.0  # seconds; RFC 7766 §6.2.3 asks for "of the order of seconds"
    tcp_max_connections: int = 1000  # per worker process, like its file descriptors
    udp_receiver: str = UDP_RECEIVERS[0]  # see UDP_RECEIVERS
    log_level: str = "info"
    # seconds, on SIGTERM, for open TCP connections to receive the answers they are owed
    drain_timeout: float = 2.0
    # Worker processes, each with its own SO_REUSEPORT sockets; 0 serves in the supervisor itself.
    workers: int = field(default_factory=lambda: default_workers())
    metrics_listen: ListenAddress | None = None  # Prometheus /metrics over HTTP; None: off
    # One line per query in Route 53's query-log format, appended by every worker; None: off.
    query_log: Path | None = None
    # The SQLite database of hosted zones, record sets and changes (created when missing).
    state: Path = Path(DEFAULT_STATE)
    # The Route 53 API; it serves only when access_keys names at least one key.
    api_listen: ListenAddress = field(default_factory=lambda: parse_listen(DEFAULT_API_LISTEN))
    # access key id -> secret access key, for AWS SigV4 (never logged, never on the command line)
    access_keys: dict[str, str] = field(default_factory=dict, repr=False)
    # The delegation set every hosted zone gets: its NS records and the SOA's primary server.
    name_servers: tuple[str, ...] = DEFAULT_NAME_SERVERS
    # Routing policies: a MaxMind DB (GeoLite2/GeoIP2 City or Country) placing clients for
    # geolocation and geoproximity records; read at startup, never downloaded.
    geoip_database: Path | None = None
    # Latency-based routing: client networks -> region -> latency (fastdns.geo.latency).
    latency: LatencyTable | None = None
    # IP-based routing: CIDR collections by id (fastdns.geo.cidr).
    cidr_collections: dict[str, CidrCollection] = field(default_factory=dict)
    # Multiplies every health check's request interval. 1 in production (Route 53's 10 s and
    # 30 s); a lab or a test shortens it to see failovers in seconds.
    health_check_time_scale: float = 1.0
    # DNSSEC (issue 6): the algorithm of new key-signing keys, and so of the zones they sign
    # (13 ECDSAP256SHA256, Route 53's; or 15 ED25519).
    dnssec_algorithm: int = 13
    # Zone transfers (fastdns.xfr.config): TSIG keys by name (never logged), and who may
    # transfer which zone and which secondaries get NOTIFY.
    tsig_keys: dict[dns.name.Name, TsigKeySpec] = field(default_factory=dict, repr=False)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    # RFC 2136 UPDATE of hosted zones (fastdns.xfr.update): the keys each zone accepts.
    update: UpdateConfig = field(default_factory=UpdateConfig)
    # How each hosted zone's SOA serial moves on a change: increment or unixtime.
    serial: SerialConfig = field(default_factory=SerialConfig)
    # Zones this server is a secondary for (fastdns.xfr.secondary): origin -> primaries, key.
    secondary: dict[dns.name.Name, SecondaryConfig] = field(default_factory=dict)


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    try:
        return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))
    except (AttributeError, OSError):  # not Linux
        return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def parse_listen(text: str) -> ListenAddress:
    """``127.0.0.1:5353`` or ``[::1]:5353`` -> ``ListenAddress``; ``ValueError`` says why not."""
    if not isinstance(text, str):
        raise ValueError(f"expected a string like 127.0.0.1:5353, got {text!r}")
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:5353 or [::1]:5353")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        bracketed = True
    else:
        bracketed = False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not bracketed and ":" in host:
            raise ValueError(
                f"{text!r}: put an IPv6 address in brackets, e.g. [::1]:5353"
            ) from None
        raise ValueError(f"{text!r}: {host!r} is not an IPv4 or IPv6 address") from None
    if address.version == 6 and not bracketed:
        raise ValueError(f"{text!r}: put an IPv6 address in brackets, e.g. [::1]:5353")
    if address.version == 4 and bracketed:
        raise ValueError(f"{text!r}: only IPv6 addresses go in brackets")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return ListenAddress(host=host, port=int(port_text), family=family)


def read_config_file(path: str | Path) -> dict[str, object]:
    """Parse a TOML config file into raw settings (unvalidated values, known keys only)."""
    path = Path(path)
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ConfigError(
                f"{path}: reading a config file needs Python 3.11+ (tomllib) or the tomli package"
            ) from None
    try:
        with path.open("rb") as f:
            values = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for key in values:
        if key not in SETTINGS:
            known = ", ".join(sorted(SETTINGS))
            raise ConfigError(f"{path}: unknown setting {key!r} (known settings: {known})")
    for key in ("zone_dir", "query_log", "state", "geoip_database"):
        if isinstance(values.get(key), str):
            values[key] = str(path.parent / values[key])
    return values


def load_config(
    config_file: str | Path | None = None, overrides: Mapping[str, object] | None = None
) -> ServerConfig:
    """Merge a config file (optional) and command-line values into a validated ``ServerConfig``.

    ``overrides`` holds the flags that were given, keyed by setting name (``listen`` is a list of
    strings); a value of ``None`` means the flag was not given.
    """
    sources: dict[str, tuple[object, str]] = {}
    if config_file is not None:
        for key, value in read_config_file(config_file).items():
            sources[key] = (value, f"{config_file}: {key}")
    for key, value in (overrides or {}).items():
        if key not in SETTINGS:
            raise ConfigError(f"unknown setting {key!r}")
        if value is not None:
            sources[key] = (value, "--" + key.replace("_", "-"))

    settings: dict[str, object] = {}
    for key, (value, where) in sources.items():
        try:
            settings[key] = SETTINGS[key](value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if "zone_dir" not in settings:
        raise ConfigError("no zone directory: give --zone-dir DIR or zone_dir in the config file")
    settings.setdefault("listen", (parse_listen(DEFAULT_LISTEN),))
    try:
        check_key_references(
            settings.get("transfer", TransferConfig()), settings.get("tsig_keys", {})
        )
    except ValueError as exc:
        raise ConfigError(f"transfer: {exc}") from None
    undefined = sorted(
        settings.get("update", UpdateConfig()).key_names() - set(settings.get("tsig_keys", {}))
    )
    if undefined:
        raise ConfigError(f"update: TSIG key {undefined[0]} is not defined in [tsig_keys]")
    return ServerConfig(**settings)  # type: ignore[arg-type]


def _zone_dir(value: object) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a folder name, got {value!r}")
    return Path(value)


def _file_name(value: object) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a file name, got {value!r}")
    return Path(value)


def _listen(value: object) -> tuple[ListenAddress, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"expected a non-empty list of addresses, got {value!r}")
    addresses = tuple(parse_listen(item) for item in value)
    if len(set(addresses)) != len(addresses):
        raise ValueError("the same address is listed twice")
    return addresses


def _int_in(low: int, high: int):
    def check(value: object) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}, got {value!r}")
        return value

    return check


def _seconds(value: object) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 86400:
        raise ValueError(f"expected a number of seconds above 0 (at most 86400), got {value!r}")
    return float(value)


def _access_keys(value: object) -> dict[str, str]:
    """``[{id = "AKID...", secret = "..."}, ...]`` (TOML array of tables) -> {id: secret}."""
    if not isinstance(value, list):
        raise ValueError("expected a list of tables like [[access_keys]] id = ... secret = ...")
    keys: dict[str, str] = {}
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"id", "secret"}:
            raise ValueError("each access key is a table with exactly id and secret")
        key_id, secret = entry["id"], entry["secret"]
        if not isinstance(key_id, str) or not key_id.isalnum() or not 3 <= len(key_id) <= 128:
            raise ValueError(f"access key id {key_id!r}: 3 to 128 letters and digits")
        if not isinstance(secret, str) or len(secret) < 16:
            raise ValueError(f"access key {key_id}: the secret must be at least 16 characters")
        if key_id in keys:
            raise ValueError(f"access key {key_id} is listed twice")
        keys[key_id] = secret
    return keys


def _name_servers(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of name server host names")
    servers = []
    for item in value:
        try:
            name = dns.name.from_text(item) if isinstance(item, str) else None
        except dns.exception.DNSException as exc:
            raise ValueError(f"{item!r}: {exc}") from None
        if name is None or len(name) < 2:
            raise ValueError(f"{item!r}: expected a host name such as ns1.example.net")
        servers.append(name.to_text().lower())
    return tuple(servers)


def _geoip_database(value: object) -> Path:
    path = _file_name(value)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (a MaxMind DB, e.g. GeoLite2-City.mmdb)")
    return path


def _latency(value: object) -> LatencyTable:
    try:
        return parse_latency(value)  # type: ignore[arg-type]
    except GeoConfigError as exc:
        raise ValueError(str(exc)) from None


def _cidr_collections(value: object) -> dict[str, CidrCollection]:
    try:
        return parse_cidr_collections(value)  # type: ignore[arg-type]
    except GeoConfigError as exc:
        raise ValueError(str(exc)) from None


def _time_scale(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.01 <= value <= 1:
        raise ValueError(f"expected a number from 0.01 to 1, got {value!r}")
    return float(value)


def _dnssec_algorithm(value: object) -> int:
    names = {"ECDSAP256SHA256": 13, "ED25519": 15}
    if not isinstance(value, str) or value.upper() not in names:
        raise ValueError(f"expected one of {', '.join(names)}, got {value!r}")
    return names[value.upper()]


def _listen_address(value: object) -> ListenAddress:
    return parse_listen(value)  # type: ignore[arg-type]


def _udp_receiver(value: object) -> str:
    if value not in UDP_RECEIVERS:
        raise ValueError(f"expected one of {', '.join(UDP_RECEIVERS)}, got {value!r}")
    return value  # type: ignore[return-value]


def _log_level(value: object) -> str:
    if not isinstance(value, str) or value.lower() not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value.lower()


# Every setting and its validator (raw value -> typed value, ValueError on bad input).
SETTINGS = {
    "zone_dir": _zone_dir,
    "listen": _listen,
    # RFC 6891 §6.2.3: values below 512 are treated as 512; 65535 is the most a UDP/IP packet holds.
    "udp_max_payload": _int_in(512, 65535),
    "tcp_idle_timeout": _seconds,
    "tcp_max_connections": _int_in(1, 1_000_000),
    "udp_receiver": _udp_receiver,
    "log_level": _log_level,
    "drain_timeout": _seconds,
    # 0: no worker processes, the supervisor serves (for debugging and profiling).
    "workers": _int_in(0, MAX_WORKERS),
    "metrics_listen": _listen_address,
    "query_log": _file_name,
    "state": _file_name,
    "api_listen": _listen_address,
    "access_keys": _access_keys,
    "name_servers": _name_servers,
    "geoip_database": _geoip_database,
    "latency": _latency,
    "cidr_collections": _cidr_collections,
    "health_check_time_scale": _time_scale,
    "dnssec_algorithm": _dnssec_algorithm,
    "tsig_keys": parse_tsig_keys,
    "transfer": parse_transfer,
    "update": parse_update,
    "serial": parse_serial,
    "secondary": parse_secondary,
}
