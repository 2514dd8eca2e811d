"""A health check's settings: Route 53's ``HealthCheckConfig``, checked, with its defaults.

``parse_config(raw)`` turns the dict of a CreateHealthCheck request (the XML codec's output, or
boto3's own shape) into a ``HealthCheckConfig``; ``updated_config(current, request)`` applies an
UpdateHealthCheck request to one; ``HealthCheckConfig.to_api()`` writes it back in the API's
shape, which is also how the store keeps it. Field names, ranges and list element names are the
2013-04-01 service model's (botocore ``route53`` shapes HealthCheckConfig and
UpdateHealthCheckRequest); the rules that are not in the model come from the API reference:

- ``Type`` cannot change after creation, nor can ``RequestInterval`` (10 or 30, default 30) and
  ``MeasureLatency`` (API reference, HealthCheckConfig).
- ``FailureThreshold`` 1..10, default 3. ``SearchString`` up to 255 characters, required by the
  ``*_STR_MATCH`` types. ``HealthThreshold`` 0..256 for CALCULATED checks.
- An endpoint needs ``IPAddress`` or ``FullyQualifiedDomainName``; an update may change the
  IPAddress but not add or remove it, and a check made without one keeps its domain name
  (API reference, UpdateHealthCheck ``IPAddress`` and ``FullyQualifiedDomainName``).
- CALCULATED checks take no IPAddress and no Port (API reference, HealthCheckConfig).
- ``ResetElements`` clears FullyQualifiedDomainName, Regions, ResourcePath or ChildHealthChecks.

Choices of this server, where Route 53 differs or says nothing:

- Any IP address is accepted, loopback and private ranges included. Route 53 refuses "local,
  private, non-routable, or multicast" addresses because its checkers are on the internet; a
  self-hosted checker runs next to the services it checks, and checking 127.0.0.1 or 10.0.0.5 is
  the common case.
- CLOUDWATCH_METRIC and RECOVERY_CONTROL checks (and their fields AlarmIdentifier,
  InsufficientDataHealthStatus, RoutingControlArn) are refused with InvalidInput: this server has
  no CloudWatch and no routing controls.
- ``Port`` defaults to 80 for HTTP/HTTP_STR_MATCH and 443 for HTTPS/HTTPS_STR_MATCH, as in the
  Route 53 console; TCP checks must give one. ``EnableSNI`` defaults to true for the HTTPS types
  and false otherwise (what Route 53 returns when it is left out).
- ``Regions`` is kept and returned (at least 3 of the model's regions), but there is one checker.
- A CALCULATED check must name a ``HealthThreshold``; at most 255 children (Route 53's quota; the
  model allows 256), each an existing health check, none twice. The store checks existence and
  that no check becomes its own descendant.
- ``SearchString`` is refused on types that do not match strings, ``ResourcePath`` on TCP and
  CALCULATED checks, rather than stored and silently ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace

from fastdns.route53.errors import InvalidInput

__all__ = [
    "CALCULATED",
    "ENDPOINT_TYPES",
    "HTTPS_TYPES",
    "HTTP_TYPES",
    "MAX_CHILD_HEALTH_CHECKS",
    "REGIONS",
    "STRING_MATCH_TYPES",
    "HealthCheckConfig",
    "parse_config",
    "updated_config",
]

HTTP_TYPES = frozenset(["HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH"])
HTTPS_TYPES = frozenset(["HTTPS", "HTTPS_STR_MATCH"])
STRING_MATCH_TYPES = frozenset(["HTTP_STR_MATCH", "HTTPS_STR_MATCH"])
ENDPOINT_TYPES = HTTP_TYPES | {"TCP"}
CALCULATED = "CALCULATED"
UNSUPPORTED_TYPES = frozenset(["CLOUDWATCH_METRIC", "RECOVERY_CONTROL"])
# The model's HealthCheckRegion enumeration.
REGIONS = (
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
)
MIN_REGIONS = 3
MAX_CHILD_HEALTH_CHECKS = 255
MAX_HEALTH_THRESHOLD = 256
MAX_STRING = 255  # ResourcePath, FullyQualifiedDomainName, SearchString
MAX_HEALTH_CHECK_ID = 64
REQUEST_INTERVALS = (10, 30)
DEFAULT_REQUEST_INTERVAL = 30
DEFAULT_FAILURE_THRESHOLD = 3
MAX_FAILURE_THRESHOLD = 10
RESETTABLE = ("FullyQualifiedDomainName", "Regions", "ResourcePath", "ChildHealthChecks")

# HealthCheckConfig members in the model's order (the order responses are written in).
_CREATE_FIELDS = (
    "IPAddress",
    "Port",
    "Type",
    "ResourcePath",
    "FullyQualifiedDomainName",
    "SearchString",
    "RequestInterval",
    "FailureThreshold",
    "MeasureLatency",
    "Inverted",
    "Disabled",
    "HealthThreshold",
    "ChildHealthChecks",
    "EnableSNI",
    "Regions",
    "AlarmIdentifier",
    "InsufficientDataHealthStatus",
    "RoutingControlArn",
)
_UNSUPPORTED_FIELDS = ("AlarmIdentifier", "InsufficientDataHealthStatus", "RoutingControlArn")
# UpdateHealthCheckRequest members besides the path's HealthCheckId.
_UPDATE_FIELDS = (
    "HealthCheckVersion",
    "IPAddress",
    "Port",
    "ResourcePath",
    "FullyQualifiedDomainName",
    "SearchString",
    "FailureThreshold",
    "Inverted",
    "Disabled",
    "HealthThreshold",
    "ChildHealthChecks",
    "EnableSNI",
    "Regions",
    "AlarmIdentifier",
    "InsufficientDataHealthStatus",
    "ResetElements",
)


@dataclass(frozen=True)
class HealthCheckConfig:
    """One health check's settings, defaults filled in. ``None`` means "not set"."""

    type: str
    ip_address: str | None = None
    port: int | None = None
    resource_path: str | None = None
    fully_qualified_domain_name: str | None = None
    search_string: str | None = None
    request_interval: int | None = None  # endpoint checks: 10 or 30
    failure_threshold: int | None = None  # endpoint checks: 1..10
    measure_latency: bool | None = None
    inverted: bool = False
    disabled: bool = False
    health_threshold: int | None = None  # CALCULATED only
    child_health_checks: tuple[str, ...] | None = None  # CALCULATED only
    enable_sni: bool | None = None
    regions: tuple[str, ...] | None = None

    @property
    def is_calculated(self) -> bool:
        return self.type == CALCULATED

    @property
    def is_endpoint(self) -> bool:
        return self.type in ENDPOINT_TYPES

    @property
    def children(self) -> tuple[str, ...]:
        return self.child_health_checks or ()

    def to_api(self) -> dict:
        """The ``HealthCheckConfig`` structure, members in the model's order (booleans as
        ``bool``, numbers as ``int``, lists as lists): the response shape and the stored one."""
        values = {
            "IPAddress": self.ip_address,
            "Port": self.port,
            "Type": self.type,
            "ResourcePath": self.resource_path,
            "FullyQualifiedDomainName": self.fully_qualified_domain_name,
            "SearchString": self.search_string,
            "RequestInterval": self.request_interval,
            "FailureThreshold": self.failure_threshold,
            "MeasureLatency": self.measure_latency,
            "Inverted": self.inverted,
            "Disabled": self.disabled,
            "HealthThreshold": self.health_threshold,
            "ChildHealthChecks": (
                list(self.child_health_checks) if self.child_health_checks is not None else None
            ),
            "EnableSNI": self.enable_sni,
            "Regions": list(self.regions) if self.regions is not None else None,
        }
        return {name: value for name, value in values.items() if value is not None}

    @classmethod
    def from_api(cls, data: Mapping) -> HealthCheckConfig:
        """A config from ``to_api()``'s output (what the store keeps), checked again."""
        return parse_config(dict(data))


def parse_config(raw: object) -> HealthCheckConfig:
    """CreateHealthCheck's ``HealthCheckConfig``: checked, defaults filled; ``InvalidInput``
    names the first problem."""
    if not isinstance(raw, dict):
        raise InvalidInput("Invalid request: HealthCheckConfig is required")
    _refuse_unknown(raw, _CREATE_FIELDS, "HealthCheckConfig")
    check_type = raw.get("Type")
    if not isinstance(check_type, str) or not check_type:
        raise InvalidInput("Invalid request: HealthCheckConfig must have a Type")
    if check_type in UNSUPPORTED_TYPES:
        raise InvalidInput(f"Invalid request: health checks of type {check_type} are not supported")
    if check_type not in ENDPOINT_TYPES and check_type != CALCULATED:
        raise InvalidInput(f"Invalid request: unknown health check type {check_type!r}")
    _refuse_unsupported_fields(raw)
    reader = _Reader(raw)
    values = {
        "ip_address": reader.ip_address("IPAddress"),
        "port": reader.integer("Port", 1, 65535),
        "resource_path": reader.string("ResourcePath", MAX_STRING),
        "fully_qualified_domain_name": reader.string("FullyQualifiedDomainName", MAX_STRING),
        "search_string": reader.string("SearchString", MAX_STRING),
        "request_interval": reader.request_interval("RequestInterval"),
        "failure_threshold": reader.integer("FailureThreshold", 1, MAX_FAILURE_THRESHOLD),
        "measure_latency": reader.boolean("MeasureLatency"),
        "inverted": reader.boolean("Inverted") or False,
        "disabled": reader.boolean("Disabled") or False,
        "health_threshold": reader.integer("HealthThreshold", 0, MAX_HEALTH_THRESHOLD),
        "child_health_checks": reader.children("ChildHealthChecks"),
        "enable_sni": reader.boolean("EnableSNI"),
        "regions": reader.regions("Regions"),
    }
    config = HealthCheckConfig(check_type, **values)
    return _with_defaults(config)


def updated_config(current: HealthCheckConfig, request: Mapping) -> HealthCheckConfig:
    """``current`` changed by an UpdateHealthCheck request (its dict, ``HealthCheckVersion``
    and the path's ID aside): checked like a new config, plus the update-only rules."""
    for fixed in ("Type", "RequestInterval", "MeasureLatency"):
        if fixed in request:
            raise InvalidInput(f"Invalid request: {fixed} cannot be changed after creation")
    _refuse_unknown(request, (*_UPDATE_FIELDS, "HealthCheckId"), "UpdateHealthCheckRequest")
    _refuse_unsupported_fields(request)
    reader = _Reader(request)
    changes: dict = {}
    ip_address = reader.ip_address("IPAddress")
    if ip_address is not None:
        if current.ip_address is None:
            raise InvalidInput(
                "Invalid request: IPAddress cannot be added to a health check created without one"
            )
        changes["ip_address"] = ip_address
    readers = {
        "port": lambda: reader.integer("Port", 1, 65535),
        "resource_path": lambda: reader.string("ResourcePath", MAX_STRING),
        "fully_qualified_domain_name": lambda: reader.string(
            "FullyQualifiedDomainName", MAX_STRING
        ),
        "search_string": lambda: reader.string("SearchString", MAX_STRING),
        "failure_threshold": lambda: reader.integer("FailureThreshold", 1, MAX_FAILURE_THRESHOLD),
        "inverted": lambda: reader.boolean("Inverted"),
        "disabled": lambda: reader.boolean("Disabled"),
        "health_threshold": lambda: reader.integer("HealthThreshold", 0, MAX_HEALTH_THRESHOLD),
        "child_health_checks": lambda: reader.children("ChildHealthChecks"),
        "enable_sni": lambda: reader.boolean("EnableSNI"),
        "regions": lambda: reader.regions("Regions"),
    }
    for name, read in readers.items():
        value = read()
        if value is not None:
            changes[name] = value
    for element in _reset_elements(request.get("ResetElements")):
        attribute = _attribute(element)
        if attribute in changes:
            raise InvalidInput(
                f"Invalid request: {element} is both given a value and reset in ResetElements"
            )
        changes[attribute] = None
    if (
        current.ip_address is None
        and current.fully_qualified_domain_name is not None
        and "fully_qualified_domain_name" in changes
        and changes["fully_qualified_domain_name"] is None
    ):
        raise InvalidInput(
            "Invalid request: FullyQualifiedDomainName cannot be removed from a health check "
            "without an IPAddress"
        )
    return _with_defaults(replace(current, **changes))


def _with_defaults(config: HealthCheckConfig) -> HealthCheckConfig:
    """Fill the defaults of ``config``'s type and check which fields go together."""
    changes: dict = {}
    if config.is_endpoint:
        if config.ip_address is None and config.fully_qualified_domain_name is None:
            raise InvalidInput(
                "Invalid request: a health check of type "
                f"{config.type} needs an IPAddress or a FullyQualifiedDomainName"
            )
        if config.health_threshold is not None or config.child_health_checks is not None:
            raise InvalidInput(
                "Invalid request: HealthThreshold and ChildHealthChecks are only for CALCULATED "
                "health checks"
            )
        if config.port is None:
            if config.type == "TCP":
                raise InvalidInput("Invalid request: a TCP health check needs a Port")
            changes["port"] = 443 if config.type in HTTPS_TYPES else 80
        if config.type in STRING_MATCH_TYPES:
            if not config.search_string:
                raise InvalidInput(
                    f"Invalid request: a health check of type {config.type} needs a SearchString"
                )
        elif config.search_string is not None:
            raise InvalidInput(
                "Invalid request: SearchString is only for HTTP_STR_MATCH and HTTPS_STR_MATCH "
                "health checks"
            )
        if config.type == "TCP" and config.resource_path is not None:
            raise InvalidInput("Invalid request: a TCP health check has no ResourcePath")
        if config.request_interval is None:
            changes["request_interval"] = DEFAULT_REQUEST_INTERVAL
        if config.failure_threshold is None:
            changes["failure_threshold"] = DEFAULT_FAILURE_THRESHOLD
        if config.measure_latency is None:
            changes["measure_latency"] = False
        if config.enable_sni is None:
            changes["enable_sni"] = config.type in HTTPS_TYPES
    else:
        for name, value in (
            ("IPAddress", config.ip_address),
            ("Port", config.port),
            ("ResourcePath", config.resource_path),
            ("FullyQualifiedDomainName", config.fully_qualified_domain_name),
            ("SearchString", config.search_string),
        ):
            if value is not None:
                raise InvalidInput(f"Invalid request: a CALCULATED health check has no {name}")
        if config.health_threshold is None:
            raise InvalidInput("Invalid request: a CALCULATED health check needs a HealthThreshold")
        if config.child_health_checks is None:
            changes["child_health_checks"] = ()
    return replace(config, **changes) if changes else config


def _refuse_unknown(raw: Mapping, known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InvalidInput(f"Invalid request: unknown field {unknown[0]!r} in {where}")


def _refuse_unsupported_fields(raw: Mapping) -> None:
    for name in _UNSUPPORTED_FIELDS:
        if raw.get(name) not in (None, ""):
            raise InvalidInput(
                f"Invalid request: {name} is not supported (no CloudWatch alarms or routing "
                "controls on this server)"
            )


def _reset_elements(raw: object) -> list[str]:
    if raw is None or raw == "":
        return []
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise InvalidInput("Invalid request: ResetElements must list ResettableElementName items")
    for element in raw:
        if element not in RESETTABLE:
            raise InvalidInput(
                f"Invalid request: {element!r} cannot be reset; resettable elements are "
                + ", ".join(RESETTABLE)
            )
    return list(dict.fromkeys(raw))


def _attribute(element: str) -> str:
    return {
        "FullyQualifiedDomainName": "fully_qualified_domain_name",
        "Regions": "regions",
        "ResourcePath": "resource_path",
        "ChildHealthChecks": "child_health_checks",
    }[element]


class _Reader:
    """Typed values of a request dict: strings from XML or native values from JSON; None when
    the field is absent."""

    def __init__(self, raw: Mapping):
        self.raw = raw

    def string(self, name: str, max_length: int) -> str | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not value or len(value) > max_length:
            raise InvalidInput(
                f"Invalid request: {name} must be a string of 1 to {max_length} characters"
            )
        return value

    def integer(self, name: str, low: int, high: int) -> int | None:
        value = self.raw.get(name)
        if value is None:
            return None
        number = value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            number = int(value.strip())
        if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
            raise InvalidInput(
                f"Invalid request: {name} must be a whole number from {low} to {high}, "
                f"got {value!r}"
            )
        return number

    def boolean(self, name: str) -> bool | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise InvalidInput(f"Invalid request: {name} must be true or false, got {value!r}")
        return value

    def request_interval(self, name: str) -> int | None:
        value = self.integer(name, 1, 3600)
        if value is not None and value not in REQUEST_INTERVALS:
            raise InvalidInput(f"Invalid request: {name} must be 10 or 30, got {value}")
        return value

    def ip_address(self, name: str) -> str | None:
        value = self.string(name, 45)
        if value is None:
            return None
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise InvalidInput(
                f"Invalid request: {name} must be an IPv4 or IPv6 address, got {value!r}"
            ) from None
        return value

    def children(self, name: str) -> tuple[str, ...] | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if value == "":
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidInput(f"Invalid request: {name} must list ChildHealthCheck IDs")
        if len(value) > MAX_CHILD_HEALTH_CHECKS:
            raise InvalidInput(
                f"Invalid request: at most {MAX_CHILD_HEALTH_CHECKS} child health checks"
            )
        for child in value:
            if not child or len(child) > MAX_HEALTH_CHECK_ID:
                raise InvalidInput(f"Invalid request: invalid child health check ID {child!r}")
        if len(set(value)) != len(value):
            raise InvalidInput("Invalid request: a child health check is listed twice")
        return tuple(value)

    def regions(self, name: str) -> tuple[str, ...] | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidInput(f"Invalid request: {name} must list Region items")
        for region in value:
            if region not in REGIONS:
                raise InvalidInput(
                    f"Invalid request: unknown health checker region {region!r}; regions are "
                    + ", ".join(REGIONS)
                )
        if len(set(value)) != len(value):
            raise InvalidInput("Invalid request: a region is listed twice")
        if len(value) < MIN_REGIONS:
            raise InvalidInput(f"Invalid request: give at least {MIN_REGIONS} regions")
        return tuple(value)
