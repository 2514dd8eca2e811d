"""fastdns.route53.sigv4: what botocore signs verifies; everything else is refused the way
Route 53 refuses it (code, message, HTTP status).

Requests are signed by botocore itself (``SigV4Auth``, or a real boto3 client whose sending is
intercepted) and then turned into what a server reads off the wire: the request-target from the
URL, the headers as sent plus the Host header the HTTP client adds, the body bytes. The clock is
frozen by patching ``botocore.auth.get_current_datetime``, where ``SigV4Auth.add_auth`` takes
its timestamp (botocore 1.43), and ``verify`` gets the same instant as ``now``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta, timezone
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence

from fastdns.route53.sigv4 import (
    AuthError,
    HttpRequest,
    canonical_query_string,
    canonical_uri,
    normalized_path,
    verify,
)

ACCESS_KEY_ID = "AKIDFASTDNSEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYFASTDNSKEY"
OTHER_KEY_ID = "AKIDOTHEREXAMPLE"
SECRETS = {ACCESS_KEY_ID: SECRET, OTHER_KEY_ID: "another/secret+key"}
SIGNED_AT = datetime(2024, 5, 1, 12, 0, 0)  # naive UTC, as botocore's clock returns it
NOW = SIGNED_AT.replace(tzinfo=timezone.utc)
API = "https://route53.amazonaws.com/2013-04-01"
CHANGE_BATCH_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
    b"<ChangeBatch><Changes><Change><Action>UPSERT</Action><ResourceRecordSet>"
    b"<Name>www.example.com.</Name><Type>A</Type><TTL>300</TTL><ResourceRecords>"
    b"<ResourceRecord><Value>192.0.2.1</Value></ResourceRecord></ResourceRecords>"
    b"</ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"
)
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


# --- building requests -----------------------------------------------------------------------


def as_text(value: str | bytes) -> str:
    """A header value as the server reads it."""
    return value.decode("latin-1") if isinstance(value, bytes) else value


def wire_request(prepared: AWSPreparedRequest) -> HttpRequest:
    """What a server receives for a request botocore prepared: the request-target is the URL's
    path and query, the headers are those sent plus the Host header the HTTP client adds."""
    url = urlsplit(prepared.url)
    target = url.path + (f"?{url.query}" if url.query else "")
    headers = [(name, as_text(value)) for name, value in prepared.headers.items()]
    if not any(name.lower() == "host" for name, _ in headers):
        headers.insert(0, ("Host", url.netloc))
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return HttpRequest(prepared.method, target, tuple(headers), body)


def sign(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    access_key_id: str = ACCESS_KEY_ID,
    secret: str = SECRET,
    token: str | None = None,
    service: str = "route53",
    region: str = "us-east-1",
    signed_at: datetime = SIGNED_AT,
) -> HttpRequest:
    """``method url`` signed by botocore's SigV4Auth at ``signed_at``, as the server sees it."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers, params=params)
    credentials = Credentials(access_key_id, secret, token)
    with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
        SigV4Auth(credentials, service, region).add_auth(request)
    return wire_request(request.prepare())


class Intercepted(Exception):
    """Raised instead of sending: carries the request boto3 was about to send."""

    def __init__(self, request: AWSPreparedRequest) -> None:
        super().__init__("intercepted")
        self.request = request


def boto3_request(operation: str, **params) -> HttpRequest:
    """The request a real boto3 Route 53 client sends for ``operation(**params)``."""
    client = boto3.client(
        "route53",
        region_name="us-east-1",
        endpoint_url="http://localhost:8053",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET,
    )

    def intercept(request: AWSPreparedRequest, **_) -> None:
        raise Intercepted(request)

    client.meta.events.register("before-send.route53", intercept)
    with (
        mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT),
        pytest.raises(Intercepted) as intercepted,
    ):
        getattr(client, operation)(**params)
    return wire_request(intercepted.value.request)


def header(request: HttpRequest, name: str) -> str:
    """The (single) value of header ``name``."""
    (value,) = [value for key, value in request.headers if key.lower() == name.lower()]
    return value


def with_header(request: HttpRequest, name: str, value: str) -> HttpRequest:
    """``request`` with header ``name`` set to ``value`` (replaced in place, else appended)."""
    if any(key.lower() == name.lower() for key, _ in request.headers):
        headers = tuple(
            (key, value if key.lower() == name.lower() else old) for key, old in request.headers
        )
    else:
        headers = (*request.headers, (name, value))
    return dataclasses.replace(request, headers=headers)


def without_header(request: HttpRequest, name: str) -> HttpRequest:
    """``request`` without any header called ``name``."""
    headers = tuple((key, value) for key, value in request.headers if key.lower() != name.lower())
    return dataclasses.replace(request, headers=headers)


def refusal(request: HttpRequest, **kwargs) -> AuthError:
    """The AuthError ``verify`` raises for ``request`` (at NOW unless ``now`` is given)."""
    kwargs.setdefault("now", NOW)
    with pytest.raises(AuthError) as refused:
        verify(request, SECRETS, **kwargs)
    return refused.value


def assert_refused(request: HttpRequest, code: str, message: str, status: int = 403) -> None:
    """``verify`` refuses ``request`` with exactly this code, message and status."""
    error = refusal(request)
    assert (error.code, error.message, error.status) == (code, message, status)


def signature_of(request: HttpRequest) -> str:
    """The Signature parameter of the request's Authorization header."""
    return header(request, "Authorization").rpartition("Signature=")[2]


# --- requests botocore signs verify ----------------------------------------------------------


def test_get_with_query_string_verifies():
    request = sign("GET", f"{API}/hostedzone?maxitems=1&marker=Z1")
    assert request.target == "/2013-04-01/hostedzone?maxitems=1&marker=Z1"
    assert verify(request, SECRETS, now=NOW) == ACCESS_KEY_ID


AWKWARD_QUERY = {
    "name": "*.a b/c=d.example.com.",
    "type": "A",
    "identifier": "x+y~z&w",
    "empty": "",
}


def test_query_percent_encoded_the_botocore_way_verifies():
    # boto3 builds the URL's query with percent_encode_sequence: %20 for a space, %2A for *.
    request = sign("GET", f"{API}/hostedzone/Z1/rrset?{percent_encode_sequence(AWKWARD_QUERY)}")
    assert "name=%2A.a%20b%2Fc%3Dd.example.com.&" in request.target
    assert verify(request, SECRETS, now=NOW) == ACCESS_KEY_ID


def test_query_form_encoded_verifies():
    # AWSRequest(params=...) puts the query on the wire form-encoded ("+" for a space) while
    # signing it AWS-encoded ("%20"): the server reads "+" as a space.
    request = sign("GET", f"{API}/hostedzone/Z1/rrset", params=AWKWARD_QUERY)
    assert "name=%2A.a+b%2Fc%3Dd.example.com.&" in request.target
    assert verify(request, SECRETS, now=NOW) == ACCESS_KEY_ID


def test_post_with_xml_body_verifies():
    request = sign(
        "POST",
        f"{API}/hostedzone/Z1/rrset/",
        body=CHANGE_BATCH_XML,
        headers={"Content-Type": "application/xml"},
    )
    assert request.body == CHANGE_BATCH_XML
    assert verify(request, SECRETS, now=NOW) == ACCESS_KEY_ID


def test_path_with_encoded_characters_verifies():
    # Signed double-encoded ("%2F" -> "%252F"), as AWS does for every service but S3.
    request = sign("GET", f"{API}/hostedzone/Z%2F1%20x%2A%7E/rrset")
    assert request.target == "/2013-04-01/hostedzone/Z%2F1%20x%2A%7E/rrset"
    assert verify(request, SECRETS, now=NOW) == ACCESS_KEY_ID


def test_path_is_normalized_before_signing():
    request = sign("GET", "https://route53.amazonaws.com//2013-04-01/./hostedzone/Z9/../Z1")
    assert verify(request, SECRETS, now=NOW) == ACCESS_KEY_ID
    assert request.target == "//2013-04-01/./hostedzone/Z9/../Z1"
    assert normalized_path(request.target) == "/2013-04-01/hostedzone/Z1"


def test_date_header_instead_of_x_amz_date_verifies():
    # With a Date header botocore signs Date (an HTTP date) and sends no X-Amz-Date.
    request = sign("GET", f"{API}/hostedzone", headers={"Date": "placeholder"})
    assert header(request, "Date") == "Wed, 01 May 2024 12:00:00 -0000"
    assert not any(name.lower() == "x-amz-date" for name, _ in request.headers)
    assert verify(request, SECRETS, now=NOW) == ACCESS_KEY_ID


def test_unsigned_extra_headers_are_fine():
    request = sign("GET", f"{API}/hostedzone")
    request = with_header(request, "X-Forwarded-For", "192.0.2.7")
    request = with_header(request, "User-Agent", "changed by a proxy")
    assert verify(request, SECRETS, now=NOW) == ACCESS_KEY_ID


def test_header_names_in_any_case():
    request = sign("GET", f"{API}/hostedzone")
    shouted = tuple((name.upper(), value) for name, value in request.headers)
    assert verify(dataclasses.replace(request, headers=shouted), SECRETS, now=NOW)


def test_returns_the_key_that_signed():
    request = sign(
        "GET", f"{API}/hostedzone", access_key_id=OTHER_KEY_ID, secret=SECRETS[OTHER_KEY_ID]
    )
    assert verify(request, SECRETS, now=NOW) == OTHER_KEY_ID


def test_any_region_is_accepted():
    request = sign("GET", f"{API}/hostedzone", region="eu-central-1")
    assert verify(request, SECRETS, now=NOW) == ACCESS_KEY_ID


def test_x_amz_content_sha256_of_the_body_is_fine():
    body_hash = hashlib.sha256(CHANGE_BATCH_XML).hexdigest()
    request = sign(
        "POST",
        f"{API}/hostedzone/Z1/rrset/",
        body=CHANGE_BATCH_XML,
        headers={"X-Amz-Content-SHA256": body_hash},
    )
    assert verify(request, SECRETS, now=NOW) == ACCESS_KEY_ID


@pytest.mark.parametrize("offset", [timedelta(minutes=15), -timedelta(minutes=15)])
def test_request_time_at_the_edge_of_the_window_is_accepted(offset):
    request = sign("GET", f"{API}/hostedzone")
    assert verify(request, SECRETS, now=NOW + offset) == ACCESS_KEY_ID


def test_naive_now_is_utc():
    request = sign("GET", f"{API}/hostedzone")
    assert verify(request, SECRETS, now=SIGNED_AT) == ACCESS_KEY_ID


BOTO3_CALLS = {
    "list_hosted_zones": {"MaxItems": "1", "Marker": "Z1"},
    "list_hosted_zones_by_name": {"DNSName": "a b*.example.com.", "MaxItems": "2"},
    "get_hosted_zone": {"Id": "/hostedzone/Z0123456789"},
    "list_resource_record_sets": {
        "HostedZoneId": "Z1",
        "StartRecordName": "*.x y/z=w.example.com.",
        "StartRecordType": "TXT",
        "MaxItems": "1",
    },
    "change_resource_record_sets": {
        "HostedZoneId": "Z1",
        "ChangeBatch": {
            "Comment": "café & <tags>",
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "www.example.com.",
                        "Type": "TXT",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": '"v=spf1 -all"'}],
                    },
                }
            ],
        },
    },
    "create_hosted_zone": {"Name": "example.org.", "CallerReference": "ref 1/2"},
    "delete_hosted_zone": {"Id": "Z1"},
}


@pytest.mark.parametrize("operation", sorted(BOTO3_CALLS))
def test_requests_from_a_boto3_client_verify(operation):
    request = boto3_request(operation, **BOTO3_CALLS[operation])
    assert header(request, "Host") == "localhost:8053"
    assert verify(request, SECRETS, now=NOW) == ACCESS_KEY_ID


# --- the AWS SigV4 test suite ----------------------------------------------------------------
# Published vectors of the AWS Signature Version 4 test suite (2015-08-30 edition,
# https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html): key AKIDEXAMPLE,
# region us-east-1, service "service", host example.amazonaws.com, X-Amz-Date 20150830T123600Z.
# Each case: method, request-target, extra headers (in wire order), body, SignedHeaders,
# published signature. The repeated-header cases send the header once per value, as the
# suite's .req files do.

SUITE_SECRETS = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
SUITE_NOW = datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc)
UNRESERVED = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FORM = "application/x-www-form-urlencoded"
SUITE = {
    "get-vanilla": (
        "GET", "/", (), b"", "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    "get-vanilla-query-order-key-case": (
        "GET", "/?Param2=value2&Param1=value1", (), b"", "host;x-amz-date",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    "get-vanilla-query-order-key": (
        "GET", "/?Param1=value2&Param1=Value1", (), b"", "host;x-amz-date",
        "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1",
    ),
    "get-vanilla-query-order-value": (
        "GET", "/?Param1=value2&Param1=value1", (), b"", "host;x-amz-date",
        "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
    ),
    "get-vanilla-query-unreserved": (
        "GET", f"/?{UNRESERVED}={UNRESERVED}", (), b"", "host;x-amz-date",
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    ),
    "get-vanilla-utf8-query": (
        "GET", "/?\u1234=bar", (), b"", "host;x-amz-date",
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    ),
    "get-unreserved": (
        "GET", f"/{UNRESERVED}", (), b"", "host;x-amz-date",
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    ),
    "get-utf8": (
        "GET", "/\u1234", (), b"", "host;x-amz-date",
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    ),
    "normalize-path/get-relative": (
        "GET", "/example/..", (), b"", "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    "normalize-path/get-relative-relative": (
        "GET", "/example1/example2/../..", (), b"", "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    "normalize-path/get-slash": (
        "GET", "//", (), b"", "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    "normalize-path/get-slash-dot-slash": (
        "GET", "/./", (), b"", "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    "normalize-path/get-slash-pointless-dot": (
        "GET", "/./example", (), b"", "host;x-amz-date",
        "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
    ),
    "normalize-path/get-space": (
        "GET", "/example space/", (), b"", "host;x-amz-date",
        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    ),
    "get-header-key-duplicate": (
        "GET", "/",
        (("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")),
        b"", "host;my-header1;x-amz-date",
        "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    ),
    "get-header-value-order": (
        "GET", "/",
        tuple(("My-Header1", value) for value in ("value4", "value1", "value3", "value2")),
        b"", "host;my-header1;x-amz-date",
        "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    ),
    "get-header-value-trim": (
        "GET", "/", (("My-Header1", " value1"), ("My-Header2", ' "a   b   c"')),
        b"", "host;my-header1;my-header2;x-amz-date",
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    ),
    "post-vanilla": (
        "POST", "/", (), b"", "host;x-amz-date",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    ),
    "post-vanilla-query": (
        "POST", "/?Param1=value1", (), b"", "host;x-amz-date",
        "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    ),
    "post-header-key-sort": (
        "POST", "/", (("My-Header1", "value1"),), b"", "host;my-header1;x-amz-date",
        "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    ),
    "post-header-value-case": (
        "POST", "/", (("My-Header1", "VALUE1"),), b"", "host;my-header1;x-amz-date",
        "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    ),
    "post-x-www-form-urlencoded": (
        "POST", "/", (("Content-Type", FORM),), b"Param1=value1", "content-type;host;x-amz-date",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    ),
    "post-x-www-form-urlencoded-parameters": (
        "POST", "/", (("Content-Type", f"{FORM}; charset=utf8"),), b"Param1=value1",
        "content-type;host;x-amz-date",
        "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
    ),
}  # fmt: skip


def suite_request(name: str, signature: str | None = None) -> HttpRequest:
    """The test-suite case ``name`` as the server receives it (optionally another signature)."""
    method, target, extra_headers, body, signed_headers, published = SUITE[name]
    authorization = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders={signed_headers}, Signature={signature or published}"
    )
    headers = (
        ("Host", "example.amazonaws.com"),
        *extra_headers,
        ("X-Amz-Date", "20150830T123600Z"),
        ("Authorization", authorization),
    )
    return HttpRequest(method, target, headers, body)


@pytest.mark.parametrize("name", sorted(SUITE))
def test_aws_test_suite_vector_verifies(name):
    request = suite_request(name)
    assert verify(request, SUITE_SECRETS, service="service", now=SUITE_NOW) == "AKIDEXAMPLE"


def test_aws_test_suite_vector_with_one_digit_changed_is_refused():
    published = SUITE["get-vanilla"][-1]
    request = suite_request("get-vanilla", signature=published[:-1] + "0")
    with pytest.raises(AuthError) as refused:
        verify(request, SUITE_SECRETS, service="service", now=SUITE_NOW)
    assert refused.value.code == "SignatureDoesNotMatch"


# --- canonical forms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("", ""),
        ("b=2&a=1&a=0", "a=0&a=1&b=2"),
        ("flag", "flag="),
        ("flag=", "flag="),
        ("a=1&&b=2", "a=1&b=2"),
        ("name=a+b", "name=a%20b"),
        ("name=a%20b", "name=a%20b"),
        ("name=a%2Bb", "name=a%2Bb"),
        ("v=%2a*", "v=%2A%2A"),
        ("v=a/b=c", "v=a%2Fb%3Dc"),
        ("v=%FF", "v=%FF"),  # bytes stay bytes: %FF and %FE do not collapse into one
        ("v=%FE", "v=%FE"),
        ("Z=1&a=1", "Z=1&a=1"),  # sorted by code point: upper case first
    ],
)
def test_canonical_query_string(query, canonical):
    assert canonical_query_string(query) == canonical


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("", "/"),
        ("/", "/"),
        ("/a/%2F b", "/a/%252F%20b"),
        ("//a/./b/../c/", "/a/c/"),
        ("/a/%2E%2E/b", "/a/%252E%252E/b"),
        ("/a/..", "/"),
        ("/../..", "/"),
    ],
)
def test_canonical_uri(path, canonical):
    assert canonical_uri(path) == canonical


# --- refusals ------------------------------------------------------------------------------


def test_missing_authorization_header():
    request = without_header(sign("GET", f"{API}/hostedzone"), "Authorization")
    assert_refused(request, "MissingAuthenticationToken", "Request is missing Authentication Token")


def test_unknown_access_key():
    request = sign("GET", f"{API}/hostedzone", access_key_id="AKIDUNKNOWN")
    assert_refused(
        request, "InvalidClientTokenId", "The security token included in the request is invalid."
    )


def test_wrong_secret():
    request = sign("GET", f"{API}/hostedzone", secret="not-the-secret")
    expected_signature = signature_of(sign("GET", f"{API}/hostedzone"))
    error = refusal(request)
    assert (error.code, error.message, error.status) == (
        "SignatureDoesNotMatch",
        SIGNATURE_MISMATCH,
        403,
    )
    assert expected_signature not in str(error)
    assert SECRET not in str(error)


def test_body_tampered_after_signing():
    request = sign("POST", f"{API}/hostedzone/Z1/rrset/", body=CHANGE_BATCH_XML)
    tampered = dataclasses.replace(
        request, body=CHANGE_BATCH_XML.replace(b"192.0.2.1", b"192.0.2.66")
    )
    assert_refused(tampered, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)


def test_signed_header_tampered():
    request = sign(
        "POST",
        f"{API}/hostedzone/Z1/rrset/",
        body=CHANGE_BATCH_XML,
        headers={"Content-Type": "application/xml"},
    )
    assert "content-type" in header(request, "Authorization")
    tampered = with_header(request, "Content-Type", "text/plain")
    assert_refused(tampered, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)


def test_host_tampered():
    request = with_header(sign("GET", f"{API}/hostedzone"), "Host", "evil.example")
    assert_refused(request, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)


def test_signed_header_removed():
    request = sign("GET", f"{API}/hostedzone", headers={"Content-Type": "application/xml"})
    assert_refused(
        without_header(request, "Content-Type"), "SignatureDoesNotMatch", SIGNATURE_MISMATCH
    )


@pytest.mark.parametrize(
    "target",
    [
        "/2013-04-01/hostedzone?maxitems=2&marker=Z1",  # value changed
        "/2013-04-01/hostedzone?maxitems=1&marker=Z1&extra=1",  # parameter added
        "/2013-04-01/hostedzone?maxitems=1",  # parameter removed
        "/2013-04-01/hostedzone?maxitems=1&Marker=Z1",  # name's case changed
        "/2013-04-01/hostedzone?maxitems=1&marker=Z1+",  # a space appended
    ],
)
def test_query_tampered(target):
    request = sign("GET", f"{API}/hostedzone?maxitems=1&marker=Z1")
    assert_refused(
        dataclasses.replace(request, target=target), "SignatureDoesNotMatch", SIGNATURE_MISMATCH
    )


@pytest.mark.parametrize(
    "target",
    [
        "/2013-04-01/hostedzone/Z2",
        "/2013-04-01/hostedzone/z1",
        "/2013-04-01/hostedzone/Z1/rrset",
        "/2013-04-01/hostedzone/%5A1",  # the same letter, percent-encoded: signed differently
    ],
)
def test_path_tampered(target):
    request = sign("GET", f"{API}/hostedzone/Z1")
    assert_refused(
        dataclasses.replace(request, target=target), "SignatureDoesNotMatch", SIGNATURE_MISMATCH
    )


def test_method_tampered():
    request = sign("GET", f"{API}/hostedzone/Z1")
    assert_refused(
        dataclasses.replace(request, method="DELETE"), "SignatureDoesNotMatch", SIGNATURE_MISMATCH
    )


def test_request_signed_too_long_ago():
    request = sign("GET", f"{API}/hostedzone")
    error = refusal(request, now=NOW + timedelta(minutes=15, seconds=1))
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    assert error.message == (
        "Signature expired: 20240501T120000Z is now earlier than 20240501T120001Z "
        "(20240501T121501Z - 15 min.)"
    )


def test_request_signed_in_the_future():
    request = sign("GET", f"{API}/hostedzone")
    error = refusal(request, now=NOW - timedelta(minutes=15, seconds=1))
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    assert error.message == (
        "Signature not yet current: 20240501T120000Z is still later than 20240501T115959Z "
        "(20240501T114459Z + 15 min.)"
    )


def test_window_is_max_skew():
    request = sign("GET", f"{API}/hostedzone")
    error = refusal(request, now=NOW + timedelta(minutes=6), max_skew=timedelta(minutes=5))
    assert error.message == (
        "Signature expired: 20240501T120000Z is now earlier than 20240501T120100Z "
        "(20240501T120600Z - 5 min.)"
    )
    assert verify(request, SECRETS, now=NOW + timedelta(minutes=4), max_skew=timedelta(minutes=5))


def test_clock_skew_is_checked_before_the_key():
    # Replaying an old request fails on its age, whatever the key.
    request = sign("GET", f"{API}/hostedzone", access_key_id="AKIDUNKNOWN")
    assert refusal(request, now=NOW + timedelta(hours=1)).code == "SignatureDoesNotMatch"


def test_credential_scoped_to_another_service():
    request = sign("GET", f"{API}/hostedzone", service="ec2")
    assert_refused(
        request,
        "SignatureDoesNotMatch",
        "Credential should be scoped to correct service: 'route53'.",
    )


def replace_in_authorization(request: HttpRequest, old: str, new: str) -> HttpRequest:
    """``request`` with ``old`` replaced by ``new`` in its Authorization header."""
    value = header(request, "Authorization")
    assert old in value
    return with_header(request, "Authorization", value.replace(old, new))


def test_credential_date_differs_from_request_date():
    request = replace_in_authorization(sign("GET", f"{API}/hostedzone"), "/20240501/", "/20240430/")
    assert_refused(
        request,
        "SignatureDoesNotMatch",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20240430' != '20240501', from '20240501T120000Z'.",
    )


def test_request_date_moved_to_another_day():
    # Signed at 23:59:59 on 30 April, X-Amz-Date then moved past midnight: the scope's date no
    # longer matches, even though the time is well within the window.
    signed_at = datetime(2024, 4, 30, 23, 59, 59)
    request = with_header(
        sign("GET", f"{API}/hostedzone", signed_at=signed_at), "X-Amz-Date", "20240501T000001Z"
    )
    error = refusal(request, now=signed_at.replace(tzinfo=timezone.utc))
    assert error.code == "SignatureDoesNotMatch"
    assert error.message.startswith("Date in Credential scope does not match")


def test_credential_with_wrong_terminator_and_service():
    request = replace_in_authorization(
        sign("GET", f"{API}/hostedzone"), "/route53/aws4_request", "/s3/aws5_request"
    )
    assert_refused(
        request,
        "SignatureDoesNotMatch",
        "Credential should be scoped to correct service: 'route53'. Credential should be scoped "
        "with a valid terminator: 'aws4_request', not 'aws5_request'.",
    )


def test_credential_with_empty_region():
    request = replace_in_authorization(sign("GET", f"{API}/hostedzone"), "/us-east-1/", "//")
    assert_refused(
        request, "SignatureDoesNotMatch", "Credential should be scoped to a valid region, not ''."
    )


def test_host_must_be_signed():
    request = replace_in_authorization(
        sign("GET", f"{API}/hostedzone"),
        "SignedHeaders=host;x-amz-date",
        "SignedHeaders=x-amz-date",
    )
    assert_refused(
        request,
        "SignatureDoesNotMatch",
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    )


REQUIRES_ALL = (
    "Authorization header requires 'Credential' parameter. "
    "Authorization header requires 'Signature' parameter. "
    "Authorization header requires 'SignedHeaders' parameter."
)
GOOD_CREDENTIAL = f"Credential={ACCESS_KEY_ID}/20240501/us-east-1/route53/aws4_request"


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("", f"{REQUIRES_ALL} Authorization="),
        ("Basic dXNlcjpwYXNzd29yZA==", f"{REQUIRES_ALL} Authorization=Basic"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", f"{REQUIRES_ALL} Authorization=Bearer"),
        ("AWS AKIDFASTDNSEXAMPLE:c2lnbmF0dXJl", f"{REQUIRES_ALL} Authorization=AWS"),  # SigV2
        ("AWS4-HMAC-SHA256", f"{REQUIRES_ALL} Authorization=AWS4-HMAC-SHA256"),
        ("AWS4-HMAC-SHA256 Foo=Bar, Baz=Burp", f"{REQUIRES_ALL} Authorization=AWS4-HMAC-SHA256"),
        (
            f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}",
            "Authorization header requires 'Signature' parameter. Authorization header requires "
            "'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host;x-amz-date, Signature=",
            "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256",
        ),
        (
            "AWS4-HMAC-SHA256 FooBar, BazBurp",
            "'FooBar' not a valid key=value pair (missing equal-sign) in Authorization header.",
        ),
        (
            f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host, Signature=ab, Signature=cd",
            "Authorization header has more than one 'Signature'.",
        ),
        (
            f"AWS4-HMAC-SHA512 {GOOD_CREDENTIAL}, SignedHeaders=host, Signature=ab",
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDFASTDNSEXAMPLE, SignedHeaders=host;x-amz-date, "
            "Signature=abcdef",
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            "keyid/date/region/service/term, got 'AKIDFASTDNSEXAMPLE'",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20240501/us-east-1/route53, "
            "SignedHeaders=host;x-amz-date, Signature=abcdef",
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            "keyid/date/region/service/term, got 'AKIDFASTDNSEXAMPLE/20240501/us-east-1/route53'",
        ),
    ],
)
def test_malformed_authorization_header(authorization, message):
    request = with_header(sign("GET", f"{API}/hostedzone"), "Authorization", authorization)
    assert_refused(request, "IncompleteSignature", message)


def test_malformed_authorization_messages_do_not_echo_the_header():
    token = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.sig"
    request = with_header(sign("GET", f"{API}/hostedzone"), "Authorization", f"Bearer {token}")
    assert token not in refusal(request).message


@pytest.mark.parametrize(
    ("signature", "why"),
    [("0" * 64, "wrong"), ("abc", "short"), ("\u00e9" * 64, "not hex, not ASCII")],
)
def test_bad_signature_values(signature, why):
    request = sign("GET", f"{API}/hostedzone")
    request = replace_in_authorization(request, signature_of(request), signature)
    assert_refused(request, "SignatureDoesNotMatch", SIGNATURE_MISMATCH)


def test_no_date_header():
    request = without_header(sign("GET", f"{API}/hostedzone"), "X-Amz-Date")
    assert_refused(
        request,
        "IncompleteSignature",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=AWS4-HMAC-SHA256",
    )


@pytest.mark.parametrize("value", ["2024-05-01T12:00:00Z", "20240501T120000", "20241301T120000Z"])
def test_x_amz_date_not_in_basic_format(value):
    request = with_header(sign("GET", f"{API}/hostedzone"), "X-Amz-Date", value)
    assert_refused(
        request,
        "IncompleteSignature",
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601",
    )


def test_unreadable_date_header():
    request = with_header(
        sign("GET", f"{API}/hostedzone", headers={"Date": "placeholder"}), "Date", "yesterday"
    )
    error = refusal(request)
    assert (error.code, error.status) == ("IncompleteSignature", 403)


def test_two_authorization_headers():
    request = sign("GET", f"{API}/hostedzone")
    doubled = dataclasses.replace(
        request, headers=(*request.headers, ("authorization", header(request, "Authorization")))
    )
    assert_refused(
        doubled, "IncompleteSignature", "The request has more than one Authorization header."
    )


def presigned(url: str) -> HttpRequest:
    """``GET url`` presigned by botocore (query-string authentication), as the server sees it."""
    request = AWSRequest(method="GET", url=url)
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT):
        SigV4QueryAuth(Credentials(ACCESS_KEY_ID, SECRET), "route53", "us-east-1").add_auth(request)
    return wire_request(request.prepare())


PRESIGNED_MESSAGE = (
    "Query-string authentication (presigned URLs) is not supported; "
    "sign the request with an Authorization header."
)


def test_presigned_url_is_refused():
    request = presigned(f"{API}/hostedzone")
    assert "X-Amz-Signature=" in request.target
    assert_refused(request, "AccessDenied", PRESIGNED_MESSAGE)


def test_presigned_url_parameters_next_to_a_valid_header_are_refused():
    request = sign("GET", f"{API}/hostedzone")
    request = dataclasses.replace(request, target=request.target + "?x-amz-signature=abc")
    assert_refused(request, "AccessDenied", PRESIGNED_MESSAGE)


def test_session_token_is_refused():
    # No temporary credentials exist here, so no X-Amz-Security-Token is valid.
    request = sign("GET", f"{API}/hostedzone", token="FwoGZXIvYXdzEXAMPLETOKEN")
    assert "x-amz-security-token" in header(request, "Authorization")
    assert_refused(
        request, "InvalidClientTokenId", "The security token included in the request is invalid."
    )


PAYLOAD_MISMATCH = "The provided 'x-amz-content-sha256' header does not match what was computed."


def test_unsigned_payload_is_refused():
    # Signed correctly, but over the literal UNSIGNED-PAYLOAD: the body would not be covered.
    request = sign(
        "POST",
        f"{API}/hostedzone/Z1/rrset/",
        body=CHANGE_BATCH_XML,
        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )
    assert_refused(request, "XAmzContentSHA256Mismatch", PAYLOAD_MISMATCH, 400)


def test_x_amz_content_sha256_not_matching_the_body():
    request = sign(
        "POST",
        f"{API}/hostedzone/Z1/rrset/",
        body=CHANGE_BATCH_XML,
        headers={"X-Amz-Content-SHA256": hashlib.sha256(CHANGE_BATCH_XML).hexdigest()},
    )
    tampered = dataclasses.replace(request, body=CHANGE_BATCH_XML + b" ")
    assert_refused(tampered, "XAmzContentSHA256Mismatch", PAYLOAD_MISMATCH, 400)


def test_auth_error_carries_code_message_status():
    error = AuthError("IncompleteSignature", "Some message.")
    assert (error.code, error.message, error.status) == (
        "IncompleteSignature",
        "Some message.",
        403,
    )
    assert "IncompleteSignature" in str(error)


def test_a_token_without_a_scheme_is_not_echoed():
    token = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl"
    request = with_header(sign("GET", f"{API}/hostedzone"), "Authorization", token)
    assert_refused(request, "IncompleteSignature", f"{REQUIRES_ALL} Authorization=")


def test_now_in_another_time_zone():
    request = sign("GET", f"{API}/hostedzone")
    tokyo = timezone(timedelta(hours=9))
    late = (NOW + timedelta(minutes=20)).astimezone(tokyo)
    assert refusal(request, now=late).message == (
        "Signature expired: 20240501T120000Z is now earlier than 20240501T120500Z "
        "(20240501T122000Z - 15 min.)"
    )
    assert verify(request, SECRETS, now=NOW.astimezone(tokyo)) == ACCESS_KEY_ID


def test_target_decoded_with_surrogateescape():
    # A server that decodes the request line as UTF-8 with surrogateescape hands over raw bytes
    # as lone surrogates: they are signed as those bytes. ("/\u1234" is E1 88 B4 in UTF-8.)
    raw_utf8 = "/\u1234".encode().decode("ascii", "surrogateescape")
    request = dataclasses.replace(suite_request("get-utf8"), target=raw_utf8)
    assert verify(request, SUITE_SECRETS, service="service", now=SUITE_NOW) == "AKIDEXAMPLE"


def test_lone_surrogate_in_target_does_not_crash():
    request = dataclasses.replace(suite_request("get-utf8"), target="/\ud800?x=\ud800")
    with pytest.raises(AuthError) as refused:
        verify(request, SUITE_SECRETS, service="service", now=SUITE_NOW)
    assert refused.value.code == "SignatureDoesNotMatch"


def test_a_key_with_an_empty_secret_is_unknown():
    request = sign("GET", f"{API}/hostedzone", access_key_id="AKIDEMPTY", secret="")
    with pytest.raises(AuthError) as refused:
        verify(request, {"AKIDEMPTY": ""}, now=NOW)
    assert refused.value.code == "InvalidClientTokenId"
