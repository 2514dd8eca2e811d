"""The Route 53 API, driven by boto3 against a real fastdns, with answers checked over DNS.

One server per module (its state is a fresh SQLite file); each test makes its own hosted zone
so tests do not depend on each other's order.
"""

from __future__ import annotations

import itertools
import urllib.error
import urllib.request
import uuid

import botocore.exceptions
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
from support.api import running_api_server
from support.client import query

_names = itertools.count()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running_api_server(tmp_path_factory.mktemp("api")) as server:
        yield server


@pytest.fixture
def client(api):
    return api.client()


def new_zone(client, comment: str | None = None) -> tuple[str, str]:
    """Create a fresh hosted zone; (zone id, zone name)."""
    name = f"zone{next(_names)}-{uuid.uuid4().hex[:6]}.test."
    kwargs = {"HostedZoneConfig": {"Comment": comment}} if comment else {}
    response = client.create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()), **kwargs)
    return response["HostedZone"]["Id"], name


def change(client, zone_id: str, *changes, comment: str | None = None) -> str:
    batch = {"Changes": list(changes)}
    if comment:
        batch["Comment"] = comment
    return client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=batch)[
        "ChangeInfo"
    ]["Id"]


def record(action: str, name: str, rtype: str, *values: str, ttl: int = 300, **extra) -> dict:
    rrset = {
        "Name": name,
        "Type": rtype,
        "TTL": ttl,
        "ResourceRecords": [{"Value": v} for v in values],
    }
    rrset.update(extra)
    return {"Action": action, "ResourceRecordSet": rrset}


def answer(api, name: str, rtype: str) -> dns.message.Message:
    return query(api.dns.host, api.dns.port, name, rtype)


def answer_values(response: dns.message.Message, rtype: str) -> set[str]:
    rdtype = dns.rdatatype.from_text(rtype)
    return {
        rdata.to_text() for rrset in response.answer if rrset.rdtype == rdtype for rdata in rrset
    }


def all_record_sets(client, zone_id: str) -> list[dict]:
    pages = client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id)
    return [rrset for page in pages for rrset in page["ResourceRecordSets"]]


def soa_serial(api, zone: str) -> int:
    return answer(api, zone, "SOA").answer[0][0].serial


# -- the acceptance path


def test_create_zone_then_upsert_is_served(api, client):
    zone_id, zone = new_zone(client, comment="made by a test")
    assert zone_id.startswith("/hostedzone/Z")
    hosted = client.get_hosted_zone(Id=zone_id)
    assert hosted["HostedZone"]["Name"] == zone
    assert hosted["HostedZone"]["Config"] == {"Comment": "made by a test", "PrivateZone": False}
    assert hosted["HostedZone"]["ResourceRecordSetCount"] == 2  # SOA and NS, as Route 53
    assert hosted["DelegationSet"]["NameServers"] == ["ns1.fastdns.test.", "ns2.fastdns.test."]

    change_id = change(client, zone_id, record("UPSERT", f"www.{zone}", "A", "192.0.2.10"))
    assert client.get_change(Id=change_id)["ChangeInfo"]["Status"] in ("PENDING", "INSYNC")
    api.wait_insync(change_id)

    response = answer(api, f"www.{zone}", "A")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert answer_values(response, "A") == {"192.0.2.10"}
    assert response.answer[0].ttl == 300
    ns = answer(api, zone, "NS")
    assert answer_values(ns, "NS") == {"ns1.fastdns.test.", "ns2.fastdns.test."}
    assert soa_serial(api, zone) == 2  # 1 at creation, bumped by the change

    api.wait_insync(change(client, zone_id, record("UPSERT", f"www.{zone}", "A", "192.0.2.11")))
    assert answer_values(answer(api, f"www.{zone}", "A"), "A") == {"192.0.2.11"}
    assert soa_serial(api, zone) == 3


def test_delete_with_wrong_values_is_refused_and_changes_nothing(api, client):
    zone_id, zone = new_zone(client)
    api.wait_insync(change(client, zone_id, record("CREATE", f"a.{zone}", "A", "192.0.2.1")))
    before = all_record_sets(client, zone_id)
    serial = soa_serial(api, zone)

    with pytest.raises(client.exceptions.InvalidChangeBatch) as raised:
        change(client, zone_id, record("DELETE", f"a.{zone}", "A", "192.0.2.99"))
    message = raised.value.response["Error"]["Message"]
    assert f"Tried to delete resource record set [name='a.{zone}', type='A']" in message
    assert "do not match the current values" in message
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    assert all_record_sets(client, zone_id) == before
    assert soa_serial(api, zone) == serial
    assert answer_values(answer(api, f"a.{zone}", "A"), "A") == {"192.0.2.1"}


def test_a_batch_applies_all_or_nothing_and_lists_every_reason(api, client):
    zone_id, zone = new_zone(client)
    api.wait_insync(change(client, zone_id, record("CREATE", f"a.{zone}", "A", "192.0.2.1")))
    before = all_record_sets(client, zone_id)
    with pytest.raises(client.exceptions.InvalidChangeBatch) as raised:
        change(
            client,
            zone_id,
            record("CREATE", f"fine.{zone}", "A", "192.0.2.5"),
            record("CREATE", f"a.{zone}", "A", "192.0.2.1"),
            record("DELETE", f"missing.{zone}", "TXT", '"x"'),
            record("CREATE", "www.elsewhere.test.", "A", "192.0.2.6"),
        )
    message = raised.value.response["Error"]["Message"]
    assert (
        f"Tried to create resource record set [name='a.{zone}', type='A'] but it already exists"
        in message
    )
    missing = f"[name='missing.{zone}', type='TXT']"
    assert f"Tried to delete resource record set {missing} but it was not found" in message
    assert f"RRSet with DNS name www.elsewhere.test. is not permitted in zone {zone}" in message
    assert all_record_sets(client, zone_id) == before
    assert answer(api, f"fine.{zone}", "A").rcode() == dns.rcode.NXDOMAIN


def test_deleting_the_same_record_set_twice_in_one_batch_is_invalid(api, client):
    zone_id, zone = new_zone(client)
    api.wait_insync(change(client, zone_id, record("CREATE", f"a.{zone}", "A", "192.0.2.1")))
    with pytest.raises(client.exceptions.InvalidChangeBatch):
        change(
            client,
            zone_id,
            record("DELETE", f"a.{zone}", "A", "192.0.2.1"),
            record("DELETE", f"a.{zone}", "A", "192.0.2.1"),
        )
    assert answer_values(answer(api, f"a.{zone}", "A"), "A") == {"192.0.2.1"}


def test_zone_rules_apply_to_changes(api, client):
    zone_id, zone = new_zone(client)
    api.wait_insync(change(client, zone_id, record("CREATE", f"www.{zone}", "A", "192.0.2.1")))
    with pytest.raises(client.exceptions.InvalidChangeBatch) as raised:
        change(client, zone_id, record("CREATE", f"www.{zone}", "CNAME", f"other.{zone}"))
    assert "CNAME and A" in raised.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.InvalidChangeBatch) as raised:
        change(
            client,
            zone_id,
            record("DELETE", zone, "NS", "ns1.fastdns.test.", "ns2.fastdns.test.", ttl=172800),
        )
    assert "at least one NS record" in raised.value.response["Error"]["Message"]


def test_malformed_record_values_are_invalid_input(api, client):
    zone_id, zone = new_zone(client)
    with pytest.raises(client.exceptions.InvalidInput) as raised:
        change(client, zone_id, record("CREATE", f"a.{zone}", "A", "192.0.2"))
    assert "Invalid Resource Record" in raised.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.InvalidInput):
        change(
            client,
            zone_id,
            {"Action": "CREATE", "ResourceRecordSet": {"Name": f"b.{zone}", "Type": "A"}},
        )
    assert len(all_record_sets(client, zone_id)) == 2


def test_create_is_idempotent_by_caller_reference(api, client):
    reference = str(uuid.uuid4())
    name = f"idem-{uuid.uuid4().hex[:6]}.test."
    count = client.get_hosted_zone_count()["HostedZoneCount"]
    first = client.create_hosted_zone(Name=name, CallerReference=reference)
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert first["Location"].endswith(first["HostedZone"]["Id"].split("/")[-1])
    with pytest.raises(client.exceptions.HostedZoneAlreadyExists) as raised:
        client.create_hosted_zone(Name=name, CallerReference=reference)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert client.get_hosted_zone_count()["HostedZoneCount"] == count + 1


def test_list_resource_record_sets_pages_in_route53_order(api, client):
    zone_id, zone = new_zone(client)
    names = [f"host{i:04d}.{zone}" for i in range(1050)]
    # Names that sort differently with the labels reversed, and characters before "." in ASCII.
    names += [f"a.b.{zone}", f"b.a.{zone}", f"a-b.{zone}", f"a.{zone}", f"*.wild.{zone}"]
    for chunk in range(0, len(names), 500):
        change(
            client,
            zone_id,
            *[record("CREATE", n, "A", "192.0.2.1") for n in names[chunk : chunk + 500]],
        )
    weighted = [
        record("CREATE", f"w.{zone}", "A", f"192.0.2.{i}", SetIdentifier=f"id{i}", Weight=i)
        for i in (3, 1, 2)
    ]
    change_id = change(client, zone_id, *weighted, record("CREATE", f"w.{zone}", "TXT", '"t"'))
    api.wait_insync(change_id)

    listed = all_record_sets(client, zone_id)
    assert len(listed) == len(names) + 4 + 2

    def route53_order(rrset):
        labels = rrset["Name"].rstrip(".").split(".")
        return (".".join(reversed(labels)) + ".", rrset["Type"], rrset.get("SetIdentifier", ""))

    assert listed == sorted(listed, key=route53_order)
    assert {
        "Name": f"\\052.wild.{zone}",
        "Type": "A",
        "TTL": 300,
        "ResourceRecords": [{"Value": "192.0.2.1"}],
    } in listed

    # Page by page, by hand, with MaxItems=100: NextRecordName/Type/Identifier chain.
    seen, kwargs = [], {}
    while True:
        page = client.list_resource_record_sets(HostedZoneId=zone_id, MaxItems="100", **kwargs)
        assert page["MaxItems"] == "100"
        assert len(page["ResourceRecordSets"]) <= 100
        seen += page["ResourceRecordSets"]
        if not page["IsTruncated"]:
            break
        kwargs = {
            "StartRecordName": page["NextRecordName"],
            "StartRecordType": page["NextRecordType"],
        }
        if "NextRecordIdentifier" in page:
            kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]
    assert seen == listed

    # A page boundary inside the weighted group gives NextRecordIdentifier.
    page = client.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=f"w.{zone}", StartRecordType="A", MaxItems="1"
    )
    assert page["ResourceRecordSets"][0]["SetIdentifier"] == "id1"
    assert (page["NextRecordName"], page["NextRecordType"], page["NextRecordIdentifier"]) == (
        f"w.{zone}",
        "A",
        "id2",
    )
    # Name only: from the first record set whose name is >= it.
    page = client.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=f"host0500.{zone}", MaxItems="2"
    )
    assert [r["Name"] for r in page["ResourceRecordSets"]] == [
        f"host0500.{zone}",
        f"host0501.{zone}",
    ]
    with pytest.raises(client.exceptions.InvalidInput):
        client.list_resource_record_sets(HostedZoneId=zone_id, StartRecordType="A")


def test_list_hosted_zones_and_by_name(api, client):
    ids = {}
    for label in ("b", "a", "c"):
        name = f"{label}.list-{uuid.uuid4().hex[:6]}.test."
        ids[name] = client.create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))[
            "HostedZone"
        ]["Id"]
    total = client.get_hosted_zone_count()["HostedZoneCount"]
    zones = [
        z
        for page in client.get_paginator("list_hosted_zones").paginate(
            PaginationConfig={"PageSize": 2}
        )
        for z in page["HostedZones"]
    ]
    assert len(zones) == total
    assert len({z["Id"] for z in zones}) == total
    assert set(ids.values()) <= {z["Id"] for z in zones}

    first = min(ids)  # any of ours; by-name listing starts at it
    by_name = client.list_hosted_zones_by_name(DNSName=first, MaxItems="1")
    assert by_name["HostedZones"][0]["Name"] == first
    assert by_name["DNSName"] == first
    if by_name["IsTruncated"]:
        following = client.list_hosted_zones_by_name(
            DNSName=by_name["NextDNSName"], HostedZoneId=by_name["NextHostedZoneId"], MaxItems="1"
        )
        assert following["HostedZones"][0]["Id"].endswith(by_name["NextHostedZoneId"])
    everything = client.list_hosted_zones_by_name()["HostedZones"]
    keys = [".".join(reversed(z["Name"].rstrip(".").split("."))) + "." for z in everything]
    assert keys == sorted(keys)


def test_update_comment_tags_and_delete(api, client):
    zone_id, zone = new_zone(client)
    updated = client.update_hosted_zone_comment(Id=zone_id, Comment="new comment")
    assert updated["HostedZone"]["Config"]["Comment"] == "new comment"

    short_id = zone_id.split("/")[-1]
    client.change_tags_for_resource(
        ResourceType="hostedzone",
        ResourceId=short_id,
        AddTags=[{"Key": "team", "Value": "dns"}, {"Key": "env", "Value": "test"}],
    )
    client.change_tags_for_resource(
        ResourceType="hostedzone", ResourceId=short_id, RemoveTagKeys=["env"]
    )
    tags = client.list_tags_for_resource(ResourceType="hostedzone", ResourceId=short_id)
    assert tags["ResourceTagSet"]["Tags"] == [{"Key": "team", "Value": "dns"}]
    with pytest.raises(client.exceptions.NoSuchHostedZone):
        client.list_tags_for_resource(ResourceType="hostedzone", ResourceId="ZDOESNOTEXIST")

    api.wait_insync(change(client, zone_id, record("CREATE", f"x.{zone}", "TXT", '"x"')))
    with pytest.raises(client.exceptions.HostedZoneNotEmpty):
        client.delete_hosted_zone(Id=zone_id)
    assert answer(api, f"x.{zone}", "TXT").rcode() == dns.rcode.NOERROR
    change(client, zone_id, record("DELETE", f"x.{zone}", "TXT", '"x"'))
    deleted = client.delete_hosted_zone(Id=zone_id)
    api.wait_insync(deleted["ChangeInfo"]["Id"])
    assert answer(api, f"x.{zone}", "TXT").rcode() == dns.rcode.REFUSED
    with pytest.raises(client.exceptions.NoSuchHostedZone):
        client.get_hosted_zone(Id=zone_id)


def test_alias_at_the_apex_takes_the_target_values_and_ttl(api, client):
    zone_id, zone = new_zone(client)
    short_id = zone_id.split("/")[-1]
    api.wait_insync(
        change(
            client,
            zone_id,
            record("CREATE", f"www.{zone}", "A", "192.0.2.80", ttl=42),
            {
                "Action": "CREATE",
                "ResourceRecordSet": {
                    "Name": zone,
                    "Type": "A",
                    "AliasTarget": {
                        "HostedZoneId": short_id,
                        "DNSName": f"www.{zone}",
                        "EvaluateTargetHealth": False,
                    },
                },
            },
        )
    )
    response = answer(api, zone, "A")
    assert answer_values(response, "A") == {"192.0.2.80"}
    assert response.answer[0].ttl == 42
    listed = [r for r in all_record_sets(client, zone_id) if r["Name"] == zone and r["Type"] == "A"]
    assert listed[0]["AliasTarget"] == {
        "HostedZoneId": short_id,
        "DNSName": f"www.{zone}",
        "EvaluateTargetHealth": False,
    }
    with pytest.raises(client.exceptions.InvalidChangeBatch):
        change(
            client,
            zone_id,
            {
                "Action": "CREATE",
                "ResourceRecordSet": {
                    "Name": f"alias2.{zone}",
                    "Type": "A",
                    "AliasTarget": {
                        "HostedZoneId": short_id,
                        "DNSName": f"nothing.{zone}",
                        "EvaluateTargetHealth": False,
                    },
                },
            },
        )


def test_errors_use_route53_shapes(api, client):
    with pytest.raises(client.exceptions.NoSuchHostedZone) as raised:
        client.get_hosted_zone(Id="ZNOSUCHZONE")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(client.exceptions.NoSuchChange):
        client.get_change(Id="CNOSUCHCHANGE")
    with pytest.raises(client.exceptions.NoSuchHostedZone):
        change(client, "ZNOSUCHZONE", record("CREATE", "a.example.", "A", "192.0.2.1"))
    with pytest.raises(client.exceptions.InvalidDomainName):
        client.create_hosted_zone(Name="bad..name.", CallerReference=str(uuid.uuid4()))


# -- authentication


def test_unsigned_and_badly_signed_requests_are_refused(api, client):
    count = client.get_hosted_zone_count()["HostedZoneCount"]
    request = urllib.request.Request(
        api.endpoint + "/2013-04-01/hostedzone",
        data=b'<CreateHostedZoneRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
        b"<Name>anon.test.</Name><CallerReference>anon</CallerReference></CreateHostedZoneRequest>",
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)
    assert raised.value.code == 403
    body = raised.value.read().decode()
    assert "<Code>MissingAuthenticationToken</Code>" in body

    wrong_secret = api.client(secret="not-the-right-secret-at-all")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        wrong_secret.create_hosted_zone(Name="wrong.test.", CallerReference=str(uuid.uuid4()))
    assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    unknown_key = api.client(key="AKIDUNKNOWN")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        unknown_key.list_hosted_zones()
    assert raised.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert client.get_hosted_zone_count()["HostedZoneCount"] == count


def test_the_sdk_waiter_sees_insync(api, client):
    zone_id, zone = new_zone(client)
    change_id = change(client, zone_id, record("UPSERT", f"w.{zone}", "A", "192.0.2.1"))
    waiter = client.get_waiter("resource_record_sets_changed")
    waiter.wait(Id=change_id, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    assert answer_values(answer(api, f"w.{zone}", "A"), "A") == {"192.0.2.1"}
