"""Route 53's error responses: codes, HTTP statuses and the XML shape SDKs parse.

Every error is ``<ErrorResponse><Error><Type>Sender</Type><Code>..</Code><Message>..</Message>
</Error><RequestId>..</RequestId></ErrorResponse>`` in the 2013-04-01 namespace, the shape
botocore's rest-xml parser reads into ``ClientError.response["Error"]`` and maps to the
service's exception classes (``client.exceptions.NoSuchHostedZone``...). The HTTP statuses are
the ones the Route 53 service model gives each error.

InvalidChangeBatch lists every reason a batch was refused as ``[reason 1, reason 2]`` in its
message, the way Route 53 reports several problems in one batch.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

__all__ = ["XMLNS", "ApiError", "InvalidChangeBatch", "InvalidInput", "error_xml"]

XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/"


class ApiError(Exception):
    """An API request refused with Route 53 error ``code`` and HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int = 400, sender: bool = True):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.sender = sender  # the client's fault ("Sender") or ours ("Receiver")


class InvalidInput(ApiError):
    """A request that is malformed or names a value out of range (HTTP 400)."""

    def __init__(self, message: str):
        super().__init__("InvalidInput", message, 400)


class InvalidChangeBatch(ApiError):
    """A change batch that cannot be applied; ``messages`` holds every reason (HTTP 400)."""

    def __init__(self, messages: list[str]):
        self.messages = list(messages)
        super().__init__("InvalidChangeBatch", "[" + ", ".join(self.messages) + "]", 400)


def no_such_hosted_zone(zone_id: str) -> ApiError:
    return ApiError("NoSuchHostedZone", f"No hosted zone found with ID: {zone_id}", 404)


def error_xml(error: ApiError, request_id: str) -> bytes:
    """The XML body of an error response."""
    kind = "Sender" if error.sender else "Receiver"
    return (
        f'<?xml version="1.0"?>\n<ErrorResponse xmlns="{XMLNS}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{escape(request_id)}</RequestId></ErrorResponse>"
    ).encode()
