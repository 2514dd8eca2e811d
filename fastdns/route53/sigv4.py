"""AWS Signature Version 4 verification for the Route 53-compatible API.

A SigV4 client (boto3, the AWS CLI, terraform) signs every request with a key derived from its
secret access key and sends the result in the ``Authorization`` header::

    Authorization: AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/route53/aws4_request,
        SignedHeaders=host;x-amz-date, Signature=<64 hex digits>

The server holds the same secret and recomputes the signature:

1. Canonical request: the method; the canonical URI (the path as received, with empty and dot
   segments removed, then URI-encoded once more: every service but S3 encodes the path twice,
   once on the wire and once here); the canonical query string (each name and value decoded,
   re-encoded with only ``A-Z a-z 0-9 - _ . ~`` left as they are, sorted by name then value,
   ``=`` kept for empty values); one ``name:value`` line per signed header (name in lower case,
   value trimmed with inner runs of white space collapsed, repeated headers joined with ``,``);
   the ``SignedHeaders`` list; the hex SHA-256 of the body. Joined with newlines.
2. String to sign: ``AWS4-HMAC-SHA256``, the request time (``X-Amz-Date``, else the ``Date``
   header in ISO 8601 basic format), the credential scope ``date/region/service/aws4_request``
   and the hex SHA-256 of the canonical request. Joined with newlines.
3. Signing key: HMAC-SHA256 chained over the scope's date, region, service and
   ``aws4_request``, starting from ``"AWS4" + secret``. The signature is the hex HMAC-SHA256 of
   the string to sign under that key.

Besides the signature, the request time must be within ``max_skew`` of the server's clock, the
credential scope must name this service and the request's date, and ``host`` must be signed.
Only the header form is accepted: presigned URLs (``X-Amz-Signature`` in the query) are refused.

References: AWS, "Create a signed AWS API request" (SigV4),
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html, and
"Troubleshoot signed requests", .../signature-v4-troubleshooting.html (the scope and time error
messages); the SigV4 test suite,
https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html; botocore's
``botocore/auth.py`` (``SigV4Auth``), whose canonical URI and query string this module matches,
so that what boto3 signs verifies.

What the API layer must do with a verified request, because that is what the signature covers:

- read the query string with form semantics (``+`` is a space), as ``urllib.parse.parse_qsl``
  does;
- route on :func:`normalized_path` of the request path (``/a/../b`` and ``/b`` sign alike).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
SCOPE_TERMINATOR = "aws4_request"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # ISO 8601 basic format, the form of X-Amz-Date
ISO_BASIC_TIMESTAMP = re.compile(r"\d{8}T\d{6}Z")
OTHER_AWS_ALGORITHM = re.compile(r"AWS\d+-\S+")  # e.g. AWS4-HMAC-SHA512, AWS4-ECDSA-P256-SHA256
# What may be echoed of an unusable Authorization header: a scheme name ("Basic", "AWS"), never
# a token sent without one.
ECHOABLE_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,31}")
# Query parameters of a presigned URL (query-string authentication), compared in lower case.
PRESIGNED_URL_PARAMETERS = frozenset({b"x-amz-algorithm", b"x-amz-credential", b"x-amz-signature"})

# Errors, as Route 53 answers them (HTTP status, code, message). Sources:
#
# - No Authorization header: 403 MissingAuthenticationToken "Request is missing Authentication
#   Token". The AWS front end Route 53 shares with STS and SES (the same <ErrorResponse> with
#   <Type>Sender</Type>); STS's wire response is quoted in
#   github.com/amzn/selling-partner-api-docs/issues/3081. "Missing Authentication Token"
#   (without "Request is") is API Gateway's wording, not this front end's.
# - Malformed Authorization header: IncompleteSignature. AWS's "Common Errors" pages list it
#   with 400, but Route 53 answers 403: "403 IncompleteSignature (client): Credential must have
#   exactly 5 slash-delimited elements" (github.com/aws/aws-sdk-php/issues/797, a Route53Client
#   call). The message texts are AWS's: "Authorization header requires 'Credential' parameter."
#   (github.com/aws/aws-sdk-ruby/issues/317, github.com/brendanhay/amazonka/issues/316), "'x'
#   not a valid key=value pair (missing equal-sign) in Authorization header"
#   (github.com/iann0036/cloud9-sync/issues/10), and the rest as reproduced by the tests of
#   scratchstack-aws-signature, a server-side SigV4 verifier modelled on AWS's answers. AWS
#   echoes the whole Authorization header after "Authorization="; we echo only its scheme, so
#   that no credential, signature or token is copied into responses or logs.
# - Unknown access key: 403 InvalidClientTokenId "The security token included in the request is
#   invalid." -- Route 53's wire response in github.com/acmesh-official/acme.sh/issues/1342
#   (and 403 in github.com/barnybug/cli53/issues/278).
# - Wrong signature: 403 SignatureDoesNotMatch "The request signature we calculated does not
#   match ..." -- Route 53 in github.com/brendanhay/amazonka/issues/66. (AWS appends the
#   canonical request and string to sign it computed for some services; we do not.)
# - Request time outside the window: 403 SignatureDoesNotMatch, "Signature expired: X is now
#   earlier than Y (NOW - 5 min.)" -- Route 53 in github.com/crazy-max/ddns-route53/issues/40;
#   "Signature not yet current: X is still later than Y (NOW + 5 min.)" -- Route 53 in
#   github.com/kubernetes-sigs/external-dns/issues/1626. Route 53's REST overview ("About the
#   Request Time Stamp") names RequestExpired, but the service answers SignatureDoesNotMatch and
#   clients see what the service answers, so we follow the wire. Route 53's own window is
#   5 minutes; ours is ``max_skew`` (15 minutes by default, SigV4's usual window).
# - Credential scope (service, terminator, date): 403 SignatureDoesNotMatch with the messages of
#   the SigV4 troubleshooting page; Route 53 answers a wrong region that way
#   (github.com/aws/aws-sdk-php/issues/732: "403 SignatureDoesNotMatch (client): Credential
#   should be scoped to a valid region, not 'eu-central-1'."). We accept any region: boto3 signs
#   route53 with us-east-1, other clients may not, and the region is still bound into the key.
# - Host not signed: 403 SignatureDoesNotMatch "'Host' or ':authority' must be a 'SignedHeader'
#   in the AWS Authorization." (AWS's message, github.com/aws/aws-sdk-php/issues/2469).
#
# Our own choices, where there is no Route 53 answer to copy:
# - X-Amz-Content-SHA256 other than the body's SHA-256 (UNSIGNED-PAYLOAD included): 400
#   XAmzContentSHA256Mismatch, S3's code and message for it (github.com/aws/aws-sdk-go/issues/148).
#   This is a management API with small bodies: every change must be covered by the signature.
# - X-Amz-Security-Token present: 403 InvalidClientTokenId. There are no temporary credentials
#   here, so no session token is valid.
# - Presigned URL: 403 AccessDenied, with a message saying what to do instead.
# - More than one Authorization header, a repeated parameter, an unreadable Date header:
#   IncompleteSignature (403) with a plain message.
MISSING_TOKEN_MESSAGE = "Request is missing Authentication Token"
INVALID_TOKEN_MESSAGE = "The security token included in the request is invalid."
SIGNATURE_MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
HOST_NOT_SIGNED_MESSAGE = (
    "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
)
PAYLOAD_HASH_MISMATCH_MESSAGE = (
    "The provided 'x-amz-content-sha256' header does not match what was computed."
)
PRESIGNED_URL_MESSAGE = (
    "Query-string authentication (presigned URLs) is not supported; "
    "sign the request with an Authorization header."
)


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request as the server received it, before any decoding."""

    method: str  # "GET", "POST", ...
    # The raw request-target from the request line: path plus optional "?query", still
    # percent-encoded as received. Clients send it in ASCII (boto3 percent-encodes everything
    # else); a non-ASCII character is taken as UTF-8 text, one decoded with "surrogateescape"
    # as its original byte.
    target: str
    # As received, in order, names in any case; a name may repeat. Values are signed as UTF-8
    # of the text, so decode header bytes as Latin-1 (what http.client sends them as).
    headers: tuple[tuple[str, str], ...]
    body: bytes


class AuthError(Exception):
    """A request that is not (correctly) signed. code: the AWS error code (e.g.
    "SignatureDoesNotMatch"), message: the AWS message text, status: the HTTP status AWS uses
    for it."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class AuthorizationHeader:
    """The three parameters of an ``Authorization: AWS4-HMAC-SHA256 ...`` header, as sent."""

    credential: str  # "AKID/yyyymmdd/region/service/aws4_request"
    signed_headers: str  # "host;x-amz-date", names separated by ";"
    signature: str  # 64 hex digits


@dataclass(frozen=True)
class Credential:
    """The ``Credential`` parameter: the access key id and the credential scope."""

    access_key_id: str
    date: str  # yyyymmdd
    region: str
    service: str
    terminator: str  # "aws4_request"

    @property
    def scope(self) -> str:
        """The credential scope as it appears in the string to sign."""
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


def incomplete_signature(message: str) -> AuthError:
    """The error for an Authorization header that is not a well-formed SigV4 one."""
    return AuthError("IncompleteSignature", message)


def signature_mismatch(message: str = SIGNATURE_MISMATCH_MESSAGE) -> AuthError:
    """The error for a signature, scope or request time that does not check out."""
    return AuthError("SignatureDoesNotMatch", message)


def utf8(text: str) -> bytes:
    """``text`` in UTF-8. Characters a server decoded with ``surrogateescape`` become their
    original bytes again; any other lone surrogate is passed through rather than refused (it
    then matches no signature)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def header_values(headers: Sequence[tuple[str, str]], name: str) -> list[str]:
    """The values of every header called ``name`` (in any case), in the order received."""
    wanted = name.lower()
    return [value for key, value in headers if key.lower() == wanted]


def split_target(target: str) -> tuple[str, str]:
    """The request-target's path and query string, both still percent-encoded.

    Takes the origin form (``/path?query``) and the absolute form (``http://host/path?query``).
    """
    if not target.startswith("/") and "://" in target:
        parts = urlsplit(target)
        return parts.path, parts.query
    path, _, query = target.partition("?")
    return path, query


def normalized_path(path: str) -> str:
    """``path`` with empty and ``.`` segments dropped and ``..`` segments applied.

    RFC 3986's dot-segment removal, plus the removal of empty segments (``//``) that AWS also
    does; a trailing slash stays. The path stays percent-encoded: ``%2E%2E`` is not ``..``.
    An empty path is ``/``.
    """
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
        else:
            segments.append(segment)
    leading = "/" if path.startswith("/") or not path else ""
    trailing = "/" if path.endswith("/") and segments else ""
    return leading + "/".join(segments) + trailing


def canonical_uri(path: str) -> str:
    """The canonical URI of a request path as received (percent-encoded): normalized, then
    URI-encoded once more with ``/`` kept, as AWS does for every service but S3."""
    return quote(utf8(normalized_path(path)), safe="/")


def decode_query_component(text: str) -> bytes:
    """A query-string name or value, decoded: ``+`` is a space, ``%XY`` the byte XY.

    Decoding to bytes (not to text) keeps different byte strings different, so two distinct
    queries never share a canonical form.
    """
    return unquote_to_bytes(utf8(text.replace("+", " ")))


def encode_query_component(raw: bytes) -> str:
    """AWS URI encoding: every byte but ``A-Z a-z 0-9 - _ . ~`` as ``%XY`` (upper-case hex)."""
    return quote(raw, safe="")  # quote never encodes letters, digits and "-_.~"


def query_parameters(query: str) -> list[tuple[bytes, bytes]]:
    """The query string's (name, value) pairs, decoded, in order; a name without ``=`` has the
    empty value, and empty pieces (``a=1&&b=2``) are skipped."""
    pairs: list[tuple[bytes, bytes]] = []
    for piece in query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((decode_query_component(name), decode_query_component(value)))
    return pairs


def canonical_query_string(query: str) -> str:
    """The canonical query string: every pair AWS-encoded, sorted by encoded name then value,
    as ``name=value`` joined with ``&``."""
    encoded = sorted(
        (encode_query_component(name), encode_query_component(value))
        for name, value in query_parameters(query)
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


def trim_all(value: str) -> str:
    """A header value without surrounding white space, each inner run of it collapsed to one
    space (SigV4's Trimall; the same ``split``-based rule botocore signs with)."""
    return " ".join(value.split())


def canonical_headers(headers: Sequence[tuple[str, str]], signed_names: Sequence[str]) -> str:
    """One ``name:value\\n`` line per signed header, in the order of ``SignedHeaders``.

    A header received more than once has its values joined with ``,`` in the order received.
    A signed header the request does not carry cannot have been signed as sent.
    """
    lines = []
    for name in signed_names:
        values = header_values(headers, name)
        if not values:
            raise signature_mismatch()
        lines.append(f"{name}:{','.join(trim_all(value) for value in values)}\n")
    return "".join(lines)


def canonical_request(request: HttpRequest, signed_headers: str, body_hash: str) -> str:
    """SigV4's canonical request for ``request``, whose ``SignedHeaders`` is ``signed_headers``
    and whose body has the hex SHA-256 ``body_hash``."""
    path, query = split_target(request.target)
    signed_names = [name.lower() for name in signed_headers.split(";")]
    return "\n".join(
        [
            request.method,
            canonical_uri(path),
            canonical_query_string(query),
            canonical_headers(request.headers, signed_names),
            signed_headers,
            body_hash,
        ]
    )


def string_to_sign(timestamp: str, credential: Credential, canonical: str) -> str:
    """SigV4's string to sign: algorithm, request time, credential scope and the hex SHA-256 of
    the canonical request, one per line."""
    digest = hashlib.sha256(utf8(canonical)).hexdigest()
    return "\n".join([ALGORITHM, timestamp, credential.scope, digest])


def hmac_sha256(key: bytes, message: str) -> bytes:
    """HMAC-SHA256 of ``message`` (UTF-8) under ``key``."""
    return hmac.new(key, utf8(message), hashlib.sha256).digest()


def signing_key(secret_access_key: str, credential: Credential) -> bytes:
    """The key derived from the secret for the credential's date, region and service."""
    key = f"AWS4{secret_access_key}".encode()
    for part in (credential.date, credential.region, credential.service, credential.terminator):
        key = hmac_sha256(key, part)
    return key


def compute_signature(secret_access_key: str, credential: Credential, text: str) -> str:
    """The hex signature of the string to sign ``text``."""
    key = signing_key(secret_access_key, credential)
    return hmac.new(key, utf8(text), hashlib.sha256).hexdigest()


def parse_authorization(value: str, has_date_header: bool) -> AuthorizationHeader:
    """The parameters of an ``Authorization`` header value; IncompleteSignature when it is not
    a complete ``AWS4-HMAC-SHA256`` one or the request has neither X-Amz-Date nor Date."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme != ALGORITHM and OTHER_AWS_ALGORITHM.fullmatch(scheme):
        raise incomplete_signature(f"Unsupported AWS 'algorithm': '{scheme}'.")
    parameters: dict[str, str] = {}
    if scheme == ALGORITHM:
        for piece in (piece.strip() for piece in rest.split(",")):
            if not piece:
                continue
            name, equals, parameter = piece.partition("=")
            if not equals:
                raise incomplete_signature(
                    f"'{piece}' not a valid key=value pair (missing equal-sign) in "
                    "Authorization header."
                )
            name = name.strip()
            if name in parameters:
                raise incomplete_signature(f"Authorization header has more than one '{name}'.")
            parameters[name] = parameter.strip()
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not parameters.get(name)
    ]
    if not has_date_header:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        echoed = scheme if ECHOABLE_SCHEME.fullmatch(scheme) else ""
        raise incomplete_signature(" ".join([*problems, f"Authorization={echoed}"]))
    return AuthorizationHeader(
        credential=parameters["Credential"],
        signed_headers=parameters["SignedHeaders"],
        signature=parameters["Signature"],
    )


def parse_credential(text: str) -> Credential:
    """The ``Credential`` parameter split into key id and scope; IncompleteSignature unless it
    has exactly five ``/``-separated parts."""
    parts = text.split("/")
    if len(parts) != 5:
        raise incomplete_signature(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{text}'"
        )
    return Credential(*parts)


def request_time(headers: Sequence[tuple[str, str]]) -> tuple[datetime, str]:
    """The time the request was signed and its ISO 8601 basic form, for the string to sign.

    From ``X-Amz-Date`` when present (Route 53 then ignores ``Date``), else from ``Date`` (an
    HTTP date, which botocore signs with the same instant in basic format).
    """
    amz_dates = header_values(headers, "x-amz-date")
    if amz_dates:
        text = ",".join(amz_dates)
        try:
            if not ISO_BASIC_TIMESTAMP.fullmatch(text):
                raise ValueError(text)
            when = datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            raise incomplete_signature(
                f"Date must be in ISO-8601 'basic format'. Got '{text}'. "
                "See http://en.wikipedia.org/wiki/ISO_8601"
            ) from None
        return when, text
    http_dates = header_values(headers, "date")
    try:
        if len(http_dates) != 1:
            raise ValueError(http_dates)
        when = parsedate_to_datetime(http_dates[0])
    except (TypeError, ValueError, IndexError):
        raise incomplete_signature(
            f"Date header must be one HTTP date (RFC 9110), got '{','.join(http_dates)}'."
        ) from None
    if when.tzinfo is None:  # "-0000": UTC
        when = when.replace(tzinfo=timezone.utc)
    when = when.astimezone(timezone.utc)
    return when, when.strftime(TIMESTAMP_FORMAT)


def describe_duration(duration: timedelta) -> str:
    """``15 min`` or ``90 sec``: the window as AWS's time errors word it."""
    seconds = int(duration.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} sec"


def check_request_time(when: datetime, now: datetime, max_skew: timedelta) -> None:
    """SignatureDoesNotMatch (with AWS's wording) unless ``when`` is within ``max_skew`` of
    ``now``; the bounds themselves are accepted."""
    earliest, latest = now - max_skew, now + max_skew
    window = describe_duration(max_skew)
    if when < earliest:
        raise signature_mismatch(
            f"Signature expired: {when:{TIMESTAMP_FORMAT}} is now earlier than "
            f"{earliest:{TIMESTAMP_FORMAT}} ({now:{TIMESTAMP_FORMAT}} - {window}.)"
        )
    if when > latest:
        raise signature_mismatch(
            f"Signature not yet current: {when:{TIMESTAMP_FORMAT}} is still later than "
            f"{latest:{TIMESTAMP_FORMAT}} ({now:{TIMESTAMP_FORMAT}} + {window}.)"
        )


def check_scope(credential: Credential, timestamp: str, service: str) -> None:
    """SignatureDoesNotMatch unless the credential scope names a region, ``service``, the
    ``aws4_request`` terminator and the date of the request time; every problem is reported."""
    problems = []
    if not credential.region:
        problems.append("Credential should be scoped to a valid region, not ''.")
    if credential.service != service:
        problems.append(f"Credential should be scoped to correct service: '{service}'.")
    if credential.terminator != SCOPE_TERMINATOR:
        problems.append(
            f"Credential should be scoped with a valid terminator: '{SCOPE_TERMINATOR}', "
            f"not '{credential.terminator}'."
        )
    if credential.date != timestamp[:8]:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{credential.date}' != '{timestamp[:8]}', from '{timestamp}'."
        )
    if problems:
        raise signature_mismatch(" ".join(problems))


def payload_hash(request: HttpRequest) -> str:
    """The hex SHA-256 of the body. An ``X-Amz-Content-SHA256`` header, if sent, must be
    exactly that (``UNSIGNED-PAYLOAD`` is refused): the signature must cover the body."""
    body_hash = hashlib.sha256(request.body).hexdigest()
    declared = header_values(request.headers, "x-amz-content-sha256")
    if declared and declared != [body_hash]:
        raise AuthError("XAmzContentSHA256Mismatch", PAYLOAD_HASH_MISMATCH_MESSAGE, 400)
    return body_hash


def uses_presigned_url(query: str) -> bool:
    """Whether the query string carries query-string (presigned URL) authentication."""
    return any(name.lower() in PRESIGNED_URL_PARAMETERS for name, _ in query_parameters(query))


def current_time(now: datetime | None) -> datetime:
    """``now`` in UTC (a naive time is taken as UTC); the clock's time when None."""
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        return now.replace(tzinfo=timezone.utc)
    return now.astimezone(timezone.utc)


def verify(
    request: HttpRequest,
    secrets: Mapping[str, str],
    *,
    service: str = "route53",
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=15),
) -> str:
    """Verify the request's SigV4 Authorization header; return the access key id that signed it.
    secrets maps access key id -> secret access key. Raises AuthError."""
    _, query = split_target(request.target)
    if uses_presigned_url(query):
        raise AuthError("AccessDenied", PRESIGNED_URL_MESSAGE)
    authorization_values = header_values(request.headers, "authorization")
    if not authorization_values:
        raise AuthError("MissingAuthenticationToken", MISSING_TOKEN_MESSAGE)
    if len(authorization_values) > 1:
        raise incomplete_signature("The request has more than one Authorization header.")
    has_date_header = any(header_values(request.headers, name) for name in ("x-amz-date", "date"))
    authorization = parse_authorization(authorization_values[0], has_date_header)
    if "host" not in authorization.signed_headers.lower().split(";"):
        raise signature_mismatch(HOST_NOT_SIGNED_MESSAGE)
    when, timestamp = request_time(request.headers)
    check_request_time(when, current_time(now), max_skew)
    credential = parse_credential(authorization.credential)
    check_scope(credential, timestamp, service)
    secret_access_key = secrets.get(credential.access_key_id)
    if not secret_access_key or header_values(request.headers, "x-amz-security-token"):
        raise AuthError("InvalidClientTokenId", INVALID_TOKEN_MESSAGE)
    canonical = canonical_request(request, authorization.signed_headers, payload_hash(request))
    expected = compute_signature(
        secret_access_key, credential, string_to_sign(timestamp, credential, canonical)
    )
    if not hmac.compare_digest(expected.encode("ascii"), utf8(authorization.signature)):
        raise signature_mismatch()
    return credential.access_key_id
