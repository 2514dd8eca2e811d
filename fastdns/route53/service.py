"""The Route 53 operations: a routed request in, a status and a response document out.

``Route53Service.handle(method, path, query, body)`` finds the operation for the REST route
(the routes of the 2013-04-01 service model), reads its parameters from the path, the query
string and the XML body, runs it against the store and returns ``Response``. It is blocking
(SQLite) and runs on the API's store thread. Operations that change what is served
(CreateHostedZone, DeleteHostedZone, ChangeResourceRecordSets) report the zone through
``Response.changed_zone`` so the HTTP layer can start the change pipeline; operations that change
health checks (``fastdns.route53.healthchecks``) set ``Response.changed_health_checks``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

from fastdns.dnssec.keys import ECDSAP256SHA256
from fastdns.dnssec.keystore import ACTIVE, INACTIVE, KeyStore, ds_fields
from fastdns.health.store import HealthCheckStore
from fastdns.policy import PolicyEnvironment
from fastdns.route53.changebatch import parse_changes
from fastdns.route53.errors import ApiError, InvalidInput
from fastdns.route53.healthchecks import HealthCheckOperations
from fastdns.route53.names import InvalidName, name_from_text, name_text
from fastdns.route53.policycheck import policy_problem, signed_zone_problems
from fastdns.route53.testanswer import AnswerView, test_dns_answer
from fastdns.route53.xmlcodec import parse_request, render_response
from fastdns.store import ChangeInfo, HostedZone, Store

__all__ = ["Response", "Route53Service"]

API = "/2013-04-01"
MAX_LIST_ZONES = 100
MAX_LIST_RECORD_SETS = 300
MAX_CALLER_REFERENCE = 128
MAX_COMMENT = 256


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    changed_zone: str | None = None  # a zone whose served data changed
    change_id: str | None = None
    changed_health_checks: bool = False  # a health check was created, updated or deleted


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern
    operation: str


def _route(method: str, path: str, operation: str) -> _Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return _Route(method, re.compile("^" + API + pattern + "$"), operation)


ROUTES = (
    _route("POST", "/hostedzone", "CreateHostedZone"),
    _route("GET", "/hostedzone", "ListHostedZones"),
    _route("GET", "/hostedzonesbyname", "ListHostedZonesByName"),
    _route("GET", "/hostedzonecount", "GetHostedZoneCount"),
    _route("GET", "/hostedzone/{Id}", "GetHostedZone"),
    _route("POST", "/hostedzone/{Id}", "UpdateHostedZoneComment"),
    _route("DELETE", "/hostedzone/{Id}", "DeleteHostedZone"),
    _route("POST", "/hostedzone/{Id}/rrset/?", "ChangeResourceRecordSets"),
    _route("GET", "/hostedzone/{Id}/rrset/?", "ListResourceRecordSets"),
    _route("GET", "/change/{Id}", "GetChange"),
    _route("GET", "/testdnsanswer", "TestDNSAnswer"),
    _route("POST", "/tags/{ResourceType}/{ResourceId}", "ChangeTagsForResource"),
    _route("GET", "/tags/{ResourceType}/{ResourceId}", "ListTagsForResource"),
    _route("POST", "/healthcheck", "CreateHealthCheck"),
    _route("GET", "/healthcheck", "ListHealthChecks"),
    _route("GET", "/healthcheckcount", "GetHealthCheckCount"),
    _route("GET", "/healthcheck/{HealthCheckId}", "GetHealthCheck"),
    _route("POST", "/healthcheck/{HealthCheckId}", "UpdateHealthCheck"),
    _route("DELETE", "/healthcheck/{HealthCheckId}", "DeleteHealthCheck"),
    _route("GET", "/healthcheck/{HealthCheckId}/status", "GetHealthCheckStatus"),
    _route(
        "GET",
        "/healthcheck/{HealthCheckId}/lastfailurereason",
        "GetHealthCheckLastFailureReason",
    ),
    _route("POST", "/hostedzone/{Id}/enable-dnssec", "EnableHostedZoneDNSSEC"),
    _route("POST", "/hostedzone/{Id}/disable-dnssec", "DisableHostedZoneDNSSEC"),
    _route("GET", "/hostedzone/{Id}/dnssec", "GetDNSSEC"),
    _route("POST", "/keysigningkey", "CreateKeySigningKey"),
    _route("POST", "/keysigningkey/{HostedZoneId}/{Name}/activate", "ActivateKeySigningKey"),
    _route("POST", "/keysigningkey/{HostedZoneId}/{Name}/deactivate", "DeactivateKeySigningKey"),
    _route("DELETE", "/keysigningkey/{HostedZoneId}/{Name}", "DeleteKeySigningKey"),
)


class Route53Service(HealthCheckOperations):
    """The operations over one store. ``name_servers``: the delegation set of every zone;
    ``reserved_name(name)`` says why a zone name cannot be created (served from a zone file)
    or returns None. Set ``health_status`` to the health monitor's ``status`` for
    GetHealthCheckStatus, and ``policy_env`` to the server's routing-policy environment."""

    def __init__(
        self,
        store: Store,
        name_servers: tuple[str, ...],
        endpoint: str = "",
        reserved_name: Callable[[str], str | None] = lambda _name: None,
    ):
        self.store = store
        self.name_servers = name_servers
        self.endpoint = endpoint
        self.reserved_name = reserved_name
        self.health_checks = HealthCheckStore(store)
        self.keys = KeyStore(store)
        # The algorithm of new key-signing keys (config ``dnssec_algorithm``).
        self.dnssec_algorithm = ECDSAP256SHA256
        # What routing policies the server can answer (its geo database, latency table, CIDR
        # collections); the supervisor sets it.
        self.policy_env: PolicyEnvironment | None = None
        # What the server serves now, for TestDNSAnswer; the supervisor sets it.
        self.answer_view: Callable[[], AnswerView | None] | None = None

    def find(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        """(operation, path parameters) for a request; ``ApiError`` when none matches."""
        path_matched = False
        for route in ROUTES:
            match = route.pattern.match(path)
            if match is None:
                continue
            path_matched = True
            if route.method == method:
                params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                return route.operation, params
        if path_matched:
            raise ApiError("MethodNotAllowed", f"{method} is not allowed on {path}", 405)
        raise ApiError("UnknownOperation", f"No operation at {path}", 404)

    def handle(self, method: str, path: str, query: str, body: bytes) -> Response:
        operation, params = self.find(method, path)
        args = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        return getattr(self, "op_" + operation)(params, args, body)

    # -- hosted zones

    def op_CreateHostedZone(self, params, args, body) -> Response:
        request = parse_request(body, "CreateHostedZoneRequest")
        if request.get("VPC"):
            raise InvalidInput("Invalid request: private hosted zones (VPC) are not supported")
        if request.get("DelegationSetId"):
            raise ApiError(
                "NoSuchDelegationSet",
                f"No reusable delegation set: {request['DelegationSetId']}",
                400,
            )
        reference = request.get("CallerReference")
        if not isinstance(reference, str) or not 1 <= len(reference) <= MAX_CALLER_REFERENCE:
            raise InvalidInput("Invalid request: CallerReference must be 1 to 128 characters")
        try:
            zone_name = name_text(name_from_text(request.get("Name")))
        except InvalidName as exc:
            raise ApiError("InvalidDomainName", f"Invalid domain name: {exc}", 400) from None
        if zone_name == ".":
            raise ApiError("InvalidDomainName", "The root cannot be a hosted zone", 400)
        config = request.get("HostedZoneConfig") or {}
        if str(config.get("PrivateZone", "false")).lower() == "true":
            raise InvalidInput("Invalid request: private hosted zones are not supported")
        comment = _comment(config.get("Comment"))
        reason = self.reserved_name(zone_name)
        if reason:
            raise ApiError("ConflictingDomainExists", reason, 400)
        zone, change = self.store.create_hosted_zone(
            zone_name, reference, comment, self.name_servers
        )
        location = f"{self.endpoint}{API}/hostedzone/{zone.id}"
        document = {
            "HostedZone": _zone_dict(zone),
            "ChangeInfo": _change_dict(change),
            "DelegationSet": {"NameServers": list(zone.name_servers)},
        }
        return Response(
            201,
            render_response("CreateHostedZoneResponse", document),
            {"Location": location},
            changed_zone=zone.id,
            change_id=change.id,
        )

    def op_GetHostedZone(self, params, args, body) -> Response:
        zone = self.store.get_hosted_zone(params["Id"])
        document = {
            "HostedZone": _zone_dict(zone),
            "DelegationSet": {"NameServers": list(zone.name_servers)},
        }
        return Response(200, render_response("GetHostedZoneResponse", document))

    def op_ListHostedZones(self, params, args, body) -> Response:
        if args.get("delegationsetid"):
            raise ApiError("NoSuchDelegationSet", "No reusable delegation sets exist", 400)
        max_items = _max_items(args.get("maxitems"), MAX_LIST_ZONES)
        marker = args.get("marker") or None
        zones, next_marker = self.store.list_hosted_zones(marker, max_items)
        document = {
            "HostedZones": [_zone_dict(z) for z in zones],
            "Marker": marker or "",
            "IsTruncated": next_marker is not None,
            "NextMarker": next_marker,
            "MaxItems": str(max_items),
        }
        return Response(200, render_response("ListHostedZonesResponse", document))

    def op_ListHostedZonesByName(self, params, args, body) -> Response:
        max_items = _max_items(args.get("maxitems"), MAX_LIST_ZONES)
        dns_name = args.get("dnsname") or None
        zone_id = args.get("hostedzoneid") or None
        if zone_id and not dns_name:
            raise InvalidInput("Invalid request: hostedzoneid requires dnsname")
        if dns_name:
            try:
                dns_name = name_text(name_from_text(dns_name))
            except InvalidName as exc:
                raise ApiError("InvalidDomainName", f"Invalid domain name: {exc}", 400) from None
        zones, following = self.store.list_hosted_zones_by_name(dns_name, zone_id, max_items)
        document = {
            "HostedZones": [_zone_dict(z) for z in zones],
            "DNSName": dns_name,
            "HostedZoneId": zone_id,
            "IsTruncated": following is not None,
            "NextDNSName": following[0] if following else None,
            "NextHostedZoneId": following[1] if following else None,
            "MaxItems": str(max_items),
        }
        return Response(200, render_response("ListHostedZonesByNameResponse", document))

    def op_GetHostedZoneCount(self, params, args, body) -> Response:
        document = {"HostedZoneCount": self.store.hosted_zone_count()}
        return Response(200, render_response("GetHostedZoneCountResponse", document))

    def op_UpdateHostedZoneComment(self, params, args, body) -> Response:
        request = parse_request(body, "UpdateHostedZoneCommentRequest")
        zone = self.store.update_comment(params["Id"], _comment(request.get("Comment")))
        document = {"HostedZone": _zone_dict(zone)}
        return Response(200, render_response("UpdateHostedZoneCommentResponse", document))

    def op_DeleteHostedZone(self, params, args, body) -> Response:
        change = self.store.delete_hosted_zone(params["Id"])
        self.keys.forget_zone(params["Id"])
        document = {"ChangeInfo": _change_dict(change)}
        return Response(
            200,
            render_response("DeleteHostedZoneResponse", document),
            changed_zone=params["Id"],
            change_id=change.id,
        )

    # -- record sets

    def op_ChangeResourceRecordSets(self, params, args, body) -> Response:
        request = parse_request(body, "ChangeResourceRecordSetsRequest")
        batch = request.get("ChangeBatch")
        self.store.get_hosted_zone(params["Id"])  # NoSuchHostedZone before batch errors
        changes = parse_changes(batch)
        comment = _comment(batch.get("Comment")) if isinstance(batch, dict) else None
        change, _result = self.store.change_record_sets(
            params["Id"],
            changes,
            comment,
            self.health_checks.health_check_exists,
            lambda rrset: policy_problem(rrset, self.policy_env),
            lambda record_sets: (
                signed_zone_problems(record_sets.values())
                if self.keys.signing(params["Id"]) and not self.keys.denies_online(params["Id"])
                else []
            ),
        )
        document = {"ChangeInfo": _change_dict(change)}
        return Response(
            200,
            render_response("ChangeResourceRecordSetsResponse", document),
            changed_zone=params["Id"],
            change_id=change.id,
        )

    def op_ListResourceRecordSets(self, params, args, body) -> Response:
        max_items = _max_items(args.get("maxitems"), MAX_LIST_RECORD_SETS)
        name, rtype, identifier = args.get("name"), args.get("type"), args.get("identifier")
        if rtype and not name:
            raise InvalidInput("Invalid request: a type requires a name to start from")
        if identifier and not (name and rtype):
            raise InvalidInput("Invalid request: an identifier requires a name and a type")
        start = None
        if name:
            try:
                name = name_text(name_from_text(name))
            except InvalidName as exc:
                raise InvalidInput(f"Invalid request: name {exc}") from None
            start = (name, (rtype or "").upper(), identifier or "")
        rows, following = self.store.list_record_sets(params["Id"], start, max_items)
        document = {
            "ResourceRecordSets": rows,
            "IsTruncated": following is not None,
            "NextRecordName": following[0] if following else None,
            "NextRecordType": following[1] if following else None,
            "NextRecordIdentifier": (following[2] or None) if following else None,
            "MaxItems": str(max_items),
        }
        return Response(200, render_response("ListResourceRecordSetsResponse", document))

    # -- changes

    def op_GetChange(self, params, args, body) -> Response:
        change = self.store.get_change(params["Id"])
        document = {"ChangeInfo": _change_dict(change)}
        return Response(200, render_response("GetChangeResponse", document))

    # -- TestDNSAnswer

    def op_TestDNSAnswer(self, params, args, body) -> Response:
        zone_id = args.get("hostedzoneid")
        if not zone_id:
            raise InvalidInput("Invalid request: hostedzoneid is required")
        zone = self.store.get_hosted_zone(zone_id.rsplit("/", 1)[-1])
        view = self.answer_view() if self.answer_view is not None else None
        if view is None:
            raise ApiError("ServiceUnavailable", "No snapshot is being served yet", 503)
        document = test_dns_answer(view, zone.origin, args)
        return Response(200, render_response("TestDNSAnswerResponse", document))

    # -- DNSSEC (fastdns.dnssec.keystore has Route 53's rules)

    def _dnssec_change(self, operation: str, zone_id: str, change: ChangeInfo) -> Response:
        document = {"ChangeInfo": _change_dict(change)}
        return Response(
            200,
            render_response(operation + "Response", document),
            changed_zone=zone_id,
            change_id=change.id,
        )

    def op_EnableHostedZoneDNSSEC(self, params, args, body) -> Response:
        zone = self.store.get_hosted_zone(params["Id"])
        problems = (
            []
            if self.keys.denies_online(zone.id)
            else signed_zone_problems(self.store.record_sets(zone.id).values())
        )
        if problems:
            raise InvalidInput("Invalid request: " + "; ".join(problems))
        change = self.keys.enable(params["Id"])
        return self._dnssec_change("EnableHostedZoneDNSSEC", params["Id"], change)

    def op_DisableHostedZoneDNSSEC(self, params, args, body) -> Response:
        change = self.keys.disable(params["Id"])
        return self._dnssec_change("DisableHostedZoneDNSSEC", params["Id"], change)

    def op_GetDNSSEC(self, params, args, body) -> Response:
        zone = self.store.get_hosted_zone(params["Id"])
        document = {
            "Status": {
                "ServeSignature": "SIGNING" if self.keys.signing(zone.id) else "NOT_SIGNING"
            },
            "KeySigningKeys": [
                ds_fields(info, zone.origin) for info in self.keys.key_signing_keys(zone.id)
            ],
        }
        return Response(200, render_response("GetDNSSECResponse", document))

    def op_CreateKeySigningKey(self, params, args, body) -> Response:
        request = parse_request(body, "CreateKeySigningKeyRequest")
        reference = request.get("CallerReference")
        if not isinstance(reference, str) or not 1 <= len(reference) <= MAX_CALLER_REFERENCE:
            raise InvalidInput("Invalid request: CallerReference must be 1 to 128 characters")
        zone_id = request.get("HostedZoneId")
        if not isinstance(zone_id, str) or not zone_id:
            raise InvalidInput("Invalid request: HostedZoneId is required")
        zone_id = zone_id.rsplit("/", 1)[-1]
        zone = self.store.get_hosted_zone(zone_id)
        info, change = self.keys.create_key_signing_key(
            zone.id,
            request.get("Name"),
            reference,
            request.get("KeyManagementServiceArn") or "",
            request.get("Status"),
            self.dnssec_algorithm,
        )
        document = {
            "ChangeInfo": _change_dict(change),
            "KeySigningKey": ds_fields(info, zone.origin),
        }
        location = f"{self.endpoint}{API}/keysigningkey/{zone.id}/{info.key.name}"
        return Response(
            201,
            render_response("CreateKeySigningKeyResponse", document),
            {"Location": location},
            changed_zone=zone.id,
            change_id=change.id,
        )

    def op_ActivateKeySigningKey(self, params, args, body) -> Response:
        zone_id = params["HostedZoneId"]
        change = self.keys.set_key_signing_key_status(zone_id, params["Name"], ACTIVE)
        return self._dnssec_change("ActivateKeySigningKey", zone_id, change)

    def op_DeactivateKeySigningKey(self, params, args, body) -> Response:
        zone_id = params["HostedZoneId"]
        change = self.keys.set_key_signing_key_status(zone_id, params["Name"], INACTIVE)
        return self._dnssec_change("DeactivateKeySigningKey", zone_id, change)

    def op_DeleteKeySigningKey(self, params, args, body) -> Response:
        zone_id = params["HostedZoneId"]
        change = self.keys.delete_key_signing_key(zone_id, params["Name"])
        return self._dnssec_change("DeleteKeySigningKey", zone_id, change)

    # -- tags

    def op_ChangeTagsForResource(self, params, args, body) -> Response:
        request = parse_request(body, "ChangeTagsForResourceRequest")
        add = []
        for tag in request.get("AddTags") or []:
            if not isinstance(tag, dict) or not tag.get("Key"):
                raise InvalidInput("Invalid request: a Tag needs a Key")
            add.append((tag["Key"], tag.get("Value") or ""))
        remove = [key for key in request.get("RemoveTagKeys") or [] if isinstance(key, str)]
        if not add and not remove:
            raise InvalidInput("Invalid request: AddTags or RemoveTagKeys is required")
        self.store.change_tags(params["ResourceType"], params["ResourceId"], add, remove)
        return Response(200, render_response("ChangeTagsForResourceResponse", {}))

    def op_ListTagsForResource(self, params, args, body) -> Response:
        resource_type, resource_id = params["ResourceType"], params["ResourceId"]
        tags = self.store.list_tags(resource_type, resource_id)
        document = {
            "ResourceTagSet": {
                "ResourceType": resource_type,
                "ResourceId": resource_id,
                "Tags": [{"Key": key, "Value": value} for key, value in tags],
            }
        }
        return Response(200, render_response("ListTagsForResourceResponse", document))


def _zone_dict(zone: HostedZone) -> dict:
    config: dict = {}
    if zone.comment:
        config["Comment"] = zone.comment
    config["PrivateZone"] = False
    return {
        "Id": f"/hostedzone/{zone.id}",
        "Name": zone.name,
        "CallerReference": zone.caller_reference,
        "Config": config,
        "ResourceRecordSetCount": zone.record_set_count,
    }


def _change_dict(change: ChangeInfo) -> dict:
    return {
        "Id": f"/change/{change.id}",
        "Status": change.status,
        "SubmittedAt": change.submitted_at,
        "Comment": change.comment,
    }


def _comment(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_COMMENT:
        raise InvalidInput(f"Invalid request: a comment has at most {MAX_COMMENT} characters")
    return value


def _max_items(text: str | None, limit: int) -> int:
    """MaxItems: a positive number; above ``limit`` Route 53 returns ``limit``."""
    if text is None or text == "":
        return limit
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(f"Invalid request: maxitems must be a positive number, got {text!r}")
    return min(int(text), limit)
