"""The Route 53 DNSSEC operations, driven by boto3 against a real fastdns (issue 6):
URLs, XML shapes and Route 53's errors, and what enabling and disabling signing serves."""

from __future__ import annotations

import os
import stat
import uuid

import botocore.exceptions
import dns.dnssec
import dns.message
import dns.name
import dns.rdata
import dns.rdatatype
import pytest
from support.api import running_api_server
from support.client import query

ARN = "arn:aws:kms:us-east-1:111122223333:key/0b7f5d1c-2a4e-4c3e-9a61-0c2f3d4e5f60"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running_api_server(tmp_path_factory.mktemp("dnssec-api")) as server:
        yield server


@pytest.fixture
def client(api):
    return api.client()


def new_zone(client) -> tuple[str, str]:
    name = f"keys-{uuid.uuid4().hex[:8]}.test."
    response = client.create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))
    return response["HostedZone"]["Id"].rsplit("/", 1)[-1], name


def create_ksk(client, zone_id: str, name: str, status: str = "ACTIVE", reference=None):
    return client.create_key_signing_key(
        CallerReference=reference or str(uuid.uuid4()),
        HostedZoneId=zone_id,
        KeyManagementServiceArn=ARN,
        Name=name,
        Status=status,
    )


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def dnskeys(api, zone: str) -> list:
    response = query(api.dns.host, api.dns.port, zone, "DNSKEY", edns=0, dnssec_ok=True)
    return [r for rrset in response.answer if rrset.rdtype == dns.rdatatype.DNSKEY for r in rrset]


def test_enable_needs_an_active_key_signing_key(client):
    zone_id, _ = new_zone(client)
    assert client.get_dnssec(HostedZoneId=zone_id)["Status"]["ServeSignature"] == "NOT_SIGNING"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.enable_hosted_zone_dnssec(HostedZoneId=zone_id)
    assert error_code(excinfo) == "KeySigningKeyWithActiveStatusNotFound"
    create_ksk(client, zone_id, "inactive_one", status="INACTIVE")
    with pytest.raises(client.exceptions.KeySigningKeyWithActiveStatusNotFound):
        client.enable_hosted_zone_dnssec(HostedZoneId=zone_id)


def test_key_signing_key_lifecycle_and_what_is_served(api, client):
    zone_id, zone = new_zone(client)
    created = create_ksk(client, zone_id, "first_key")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["Location"].endswith(f"/keysigningkey/{zone_id}/first_key")
    ksk = created["KeySigningKey"]
    assert ksk["Flag"] == 257 and ksk["SigningAlgorithmType"] == 13
    assert ksk["SigningAlgorithmMnemonic"] == "ECDSAP256SHA256"
    assert ksk["DigestAlgorithmType"] == 2 and ksk["Status"] == "ACTIVE"
    # The DS record is the SHA-256 digest of the DNSKEY (RFC 4509), with its key tag.
    dnskey = dns.rdata.from_text("IN", "DNSKEY", ksk["DNSKEYRecord"])
    assert dns.dnssec.key_id(dnskey) == ksk["KeyTag"]
    ds = dns.dnssec.make_ds(zone, dnskey, "SHA256")
    assert ds.digest.hex().upper() == ksk["DigestValue"]
    assert ksk["DSRecord"] == f"{ksk['KeyTag']} 13 2 {ksk['DigestValue']}"

    change = client.enable_hosted_zone_dnssec(HostedZoneId=zone_id)["ChangeInfo"]
    api.wait_insync(change["Id"])
    status = client.get_dnssec(HostedZoneId=zone_id)
    assert status["Status"]["ServeSignature"] == "SIGNING"
    assert [k["Name"] for k in status["KeySigningKeys"]] == ["first_key"]
    assert status["KeySigningKeys"][0]["DSRecord"] == ksk["DSRecord"]
    served = dnskeys(api, zone)
    assert dnskey in served and {k.flags for k in served} == {256, 257}  # KSK + automatic ZSK

    # The only active KSK of a signed zone cannot be deactivated; an active one not deleted.
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.deactivate_key_signing_key(HostedZoneId=zone_id, Name="first_key")
    assert error_code(excinfo) == "KeySigningKeyInUse"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.delete_key_signing_key(HostedZoneId=zone_id, Name="first_key")
    assert error_code(excinfo) == "InvalidKeySigningKeyStatus"

    # A second KSK (rollover): both published once active; a third is one too many.
    create_ksk(client, zone_id, "second_key")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        create_ksk(client, zone_id, "third_key")
    assert error_code(excinfo) == "TooManyKeySigningKeys"
    change = client.deactivate_key_signing_key(HostedZoneId=zone_id, Name="first_key")
    api.wait_insync(change["ChangeInfo"]["Id"])
    assert dnskey not in dnskeys(api, zone)
    client.delete_key_signing_key(HostedZoneId=zone_id, Name="first_key")

    change = client.disable_hosted_zone_dnssec(HostedZoneId=zone_id)["ChangeInfo"]
    api.wait_insync(change["Id"])
    assert client.get_dnssec(HostedZoneId=zone_id)["Status"]["ServeSignature"] == "NOT_SIGNING"
    assert dnskeys(api, zone) == []
    response = query(api.dns.host, api.dns.port, f"nope.{zone}", "A", edns=0, dnssec_ok=True)
    assert not any(r.rdtype == dns.rdatatype.RRSIG for r in response.authority)


def test_key_signing_key_names_and_caller_references(client):
    zone_id, _ = new_zone(client)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        create_ksk(client, zone_id, "bad-name!")
    assert error_code(excinfo) == "InvalidKeySigningKeyName"
    create_ksk(client, zone_id, "named_key", reference="same-reference")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        create_ksk(client, zone_id, "named_key")
    assert error_code(excinfo) == "KeySigningKeyAlreadyExists"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        create_ksk(client, zone_id, "other_key", reference="same-reference")
    assert error_code(excinfo) == "KeySigningKeyAlreadyExists"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.activate_key_signing_key(HostedZoneId=zone_id, Name="missing_key")
    assert error_code(excinfo) == "NoSuchKeySigningKey"
    with pytest.raises(client.exceptions.NoSuchHostedZone):
        client.get_dnssec(HostedZoneId="ZNOSUCHZONE000000000")


def test_disable_without_dnssec_resources_is_dnssec_not_found(client):
    zone_id, _ = new_zone(client)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        client.disable_hosted_zone_dnssec(HostedZoneId=zone_id)
    assert error_code(excinfo) == "DNSSECNotFound"


def test_the_state_database_is_private_once_it_holds_keys(api, client):
    zone_id, _ = new_zone(client)
    create_ksk(client, zone_id, "private_key")
    for suffix in ("", "-wal"):
        path = f"{api.state}{suffix}"
        if os.path.exists(path):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert "PRIVATE KEY" not in api.dns.stderr_text()


def test_ed25519_zones_validate_with_delv(tmp_path):
    """``dnssec_algorithm = "ED25519"``: KSK and ZSK with algorithm 15 (RFC 8080), checked by
    delv anchored at the KSK."""
    import shutil

    from support.api import ApiServer, api_config_text
    from support.dnssec import delv, write_trust_anchor
    from support.server import running_fastdns

    from fastdns.bench.servers import free_port

    if shutil.which("delv") is None:
        pytest.skip("needs delv (bind9-dnsutils)")
    (tmp_path / "zones").mkdir()
    api_port = free_port("127.0.0.1")
    config = tmp_path / "fastdns.toml"
    text = api_config_text(tmp_path / "state.db", api_port, tmp_path / "zones")
    config.write_text('dnssec_algorithm = "ED25519"\n' + text)
    with running_fastdns(None, config=config, workers=1) as handle:
        handle.wait_for_log("Route 53 API at")
        server = ApiServer(handle, f"http://127.0.0.1:{api_port}", tmp_path / "state.db")
        client = server.client()
        zone_id, zone = new_zone(client)
        ksk = create_ksk(client, zone_id, "ed_key")["KeySigningKey"]
        assert ksk["SigningAlgorithmType"] == 15 and ksk["SigningAlgorithmMnemonic"] == "ED25519"
        server.wait_insync(
            client.enable_hosted_zone_dnssec(HostedZoneId=zone_id)["ChangeInfo"]["Id"]
        )
        assert {k.algorithm for k in dnskeys(server, zone)} == {15}
        anchors = write_trust_anchor(
            tmp_path / "anchors.conf",
            zone,
            dns.rdata.from_text("IN", "DNSKEY", ksk["DNSKEYRecord"]),
        )
        for name, rtype, verdict in (
            (zone, "SOA", "; fully validated"),
            (f"nope.{zone}", "A", "negative response, fully validated"),
        ):
            out = delv(handle.host, handle.port, anchors, zone, name, rtype)
            assert verdict in out, out
