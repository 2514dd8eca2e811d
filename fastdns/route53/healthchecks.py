"""The Route 53 health check operations, mixed into ``Route53Service``.

CreateHealthCheck, GetHealthCheck, ListHealthChecks, UpdateHealthCheck, DeleteHealthCheck,
GetHealthCheckCount, GetHealthCheckStatus and GetHealthCheckLastFailureReason, with the
2013-04-01 model's routes, response shapes and errors (NoSuchHealthCheck 404,
HealthCheckAlreadyExists 409, HealthCheckVersionMismatch 409, HealthCheckInUse 400,
InvalidInput 400). Tags on ``healthcheck`` resources go through the service's tag operations.
The settings are checked by ``fastdns.health.config``, stored by ``fastdns.health.store``.

Operations that create, change or delete a health check set ``Response.changed_health_checks``;
the HTTP layer then calls its ``on_health_change`` hook so the monitor reloads.

Statuses come from ``health_status(id)``, a callable the server sets to its monitor's
``HealthMonitor.status`` (by default nothing is known: no observations). The one observation
has Region ``CHECKER_REGION`` and the checker's own address. As in Route 53, GetHealthCheckStatus
refuses CALCULATED checks (the API reference: "You can't use GetHealthCheckStatus to get the
status of a calculated health check").

Choices: CreateHealthCheck answers 201 with the existing check when the caller reference and the
settings repeat (201 is the operation's only success status in the model); UpdateHealthCheck
adds 1 to the version on every successful call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastdns.health.config import parse_config, updated_config
from fastdns.health.store import HealthCheck, HealthCheckStore
from fastdns.route53.errors import InvalidInput
from fastdns.route53.xmlcodec import parse_request, render_response

if TYPE_CHECKING:
    from fastdns.health.monitor import HealthStatus

__all__ = ["CHECKER_REGION", "HealthCheckOperations", "health_check_dict"]

API = "/2013-04-01"
CHECKER_REGION = "local"  # HealthCheckObservation Region: this server's one checker
MAX_LIST_HEALTH_CHECKS = 1000  # Route 53 returns at most 1,000 per page
DEFAULT_LIST_HEALTH_CHECKS = 100
MAX_CALLER_REFERENCE = 64  # HealthCheckNonce


def health_check_dict(check: HealthCheck) -> dict:
    """The ``HealthCheck`` structure of a response."""
    return {
        "Id": check.id,
        "CallerReference": check.caller_reference,
        "HealthCheckConfig": check.config.to_api(),
        "HealthCheckVersion": check.version,
    }


def _response(status: int, body: bytes, headers: dict | None = None, changed: bool = False):
    # service.py imports this module for its base class, so Response is looked up at call time.
    from fastdns.route53.service import Response

    return Response(status, body, headers or {}, changed_health_checks=changed)


class HealthCheckOperations:
    """The health check operations; the class that mixes them in sets ``health_checks`` and
    ``endpoint``."""

    health_checks: HealthCheckStore
    endpoint: str
    # The monitor's status of a check (``HealthMonitor.status``); the server sets it.
    health_status: Callable[[str], HealthStatus | None] = staticmethod(lambda _id: None)

    def op_CreateHealthCheck(self, params, args, body):
        request = parse_request(body, "CreateHealthCheckRequest")
        reference = request.get("CallerReference")
        if not isinstance(reference, str) or not 1 <= len(reference) <= MAX_CALLER_REFERENCE:
            raise InvalidInput(
                f"Invalid request: CallerReference must be 1 to {MAX_CALLER_REFERENCE} characters"
            )
        config = parse_config(request.get("HealthCheckConfig"))
        check, created = self.health_checks.create(reference, config)
        document = {"HealthCheck": health_check_dict(check)}
        return _response(
            201,
            render_response("CreateHealthCheckResponse", document),
            {"Location": f"{self.endpoint}{API}/healthcheck/{check.id}"},
            changed=created,
        )

    def op_GetHealthCheck(self, params, args, body):
        check = self.health_checks.get(params["HealthCheckId"])
        document = {"HealthCheck": health_check_dict(check)}
        return _response(200, render_response("GetHealthCheckResponse", document))

    def op_ListHealthChecks(self, params, args, body):
        max_items = _max_items(args.get("maxitems"))
        marker = args.get("marker") or None
        checks, next_marker = self.health_checks.list_health_checks(marker, max_items)
        document = {
            "HealthChecks": [health_check_dict(c) for c in checks],
            "Marker": marker or "",
            "IsTruncated": next_marker is not None,
            "NextMarker": next_marker,
            "MaxItems": str(max_items),
        }
        return _response(200, render_response("ListHealthChecksResponse", document))

    def op_GetHealthCheckCount(self, params, args, body):
        document = {"HealthCheckCount": self.health_checks.count()}
        return _response(200, render_response("GetHealthCheckCountResponse", document))

    def op_UpdateHealthCheck(self, params, args, body):
        request = parse_request(body, "UpdateHealthCheckRequest")
        version = _version(request.pop("HealthCheckVersion", None))
        check = self.health_checks.update(
            params["HealthCheckId"], version, lambda current: updated_config(current, request)
        )
        document = {"HealthCheck": health_check_dict(check)}
        return _response(200, render_response("UpdateHealthCheckResponse", document), changed=True)

    def op_DeleteHealthCheck(self, params, args, body):
        self.health_checks.delete(params["HealthCheckId"])
        return _response(200, render_response("DeleteHealthCheckResponse", {}), changed=True)

    def op_GetHealthCheckStatus(self, params, args, body):
        check = self.health_checks.get(params["HealthCheckId"])
        if check.config.is_calculated:
            raise InvalidInput(
                "Invalid request: GetHealthCheckStatus does not report calculated health checks"
            )
        status = self.health_status(check.id)
        observation = status.observation if status is not None else None
        document = {"HealthCheckObservations": _observations(observation)}
        return _response(200, render_response("GetHealthCheckStatusResponse", document))

    def op_GetHealthCheckLastFailureReason(self, params, args, body):
        check = self.health_checks.get(params["HealthCheckId"])
        status = self.health_status(check.id)
        failure = status.last_failure if status is not None else None
        document = {"HealthCheckObservations": _observations(failure)}
        return _response(200, render_response("GetHealthCheckLastFailureReasonResponse", document))


def _observations(observation) -> list[dict]:
    if observation is None:
        return []
    return [
        {
            "Region": CHECKER_REGION,
            "IPAddress": observation.checker_ip,
            "StatusReport": {
                "Status": observation.status,
                "CheckedTime": observation.checked_time,
            },
        }
    ]


def _version(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(
            f"Invalid request: HealthCheckVersion must be a positive number, got {value!r}"
        )
    return value


def _max_items(text: str | None) -> int:
    """MaxItems: a positive number; above 1,000 Route 53 returns 1,000."""
    if text is None or text == "":
        return DEFAULT_LIST_HEALTH_CHECKS
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(f"Invalid request: maxitems must be a positive number, got {text!r}")
    return min(int(text), MAX_LIST_HEALTH_CHECKS)
