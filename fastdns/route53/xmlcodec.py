"""Route 53's XML (REST, 2013-04-01) to and from plain dicts in the API's own shape.

Requests and responses are element trees whose leaves are text; the only thing a generic codec
must know is which elements are lists and what their items are called (``<ResourceRecords>``
holds ``<ResourceRecord>`` items). With that table, ``parse_request`` gives the same dict boto3
would have sent (values as strings; ``ResourceRecordSet.from_api`` converts numbers and
booleans) and ``render_response`` writes the XML botocore's rest-xml parser reads.

Request bodies with a DTD are refused (no entity expansion from the network).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from fastdns.route53.errors import XMLNS, InvalidInput

__all__ = ["LIST_ITEMS", "parse_request", "render_response"]

# list element -> item element, for every list in the operations served
LIST_ITEMS = {
    "Changes": "Change",
    "ResourceRecords": "ResourceRecord",
    "ResourceRecordSets": "ResourceRecordSet",
    "HostedZones": "HostedZone",
    "NameServers": "NameServer",
    "AddTags": "Tag",
    "RemoveTagKeys": "Key",
    "Tags": "Tag",
    "VPCs": "VPC",
    "Messages": "Message",
    "HealthChecks": "HealthCheck",
    "ChildHealthChecks": "ChildHealthCheck",
    "Regions": "Region",
    "ResetElements": "ResettableElementName",
    "HealthCheckObservations": "HealthCheckObservation",
    "RecordData": "RecordDataEntry",
    "KeySigningKeys": "KeySigningKey",
    "Members": "Member",  # TestDNSAnswer's Explanation (a fastdns extension)
}
_NS_PREFIX = "{" + XMLNS + "}"


def parse_request(body: bytes, root_name: str) -> dict:
    """The dict of a request body whose root element must be ``root_name``."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise InvalidInput("Invalid XML: document type declarations are not allowed")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise InvalidInput(f"Invalid XML: {exc}") from None
    if _local(root.tag) != root_name:
        raise InvalidInput(
            f"Invalid XML: expected the root element {root_name}, got {_local(root.tag)}"
        )
    value = _element_value(root)
    return value if isinstance(value, dict) else {}


def _local(tag: str) -> str:
    return tag[len(_NS_PREFIX) :] if tag.startswith(_NS_PREFIX) else tag.rsplit("}", 1)[-1]


def _element_value(element: ET.Element) -> object:
    tag = _local(element.tag)
    children = list(element)
    if tag in LIST_ITEMS:
        return [_element_value(child) for child in children]
    if not children:
        return element.text or ""
    value: dict = {}
    for child in children:
        name = _local(child.tag)
        if name in value:
            raise InvalidInput(f"Invalid XML: {name} appears twice in {tag}")
        value[name] = _element_value(child)
    return value


def render_response(root_name: str, value: dict) -> bytes:
    """A response document: ``<root_name xmlns=...>`` holding ``value``'s members."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<{root_name} xmlns="{XMLNS}">']
    _render_members(value, parts)
    parts.append(f"</{root_name}>")
    return "".join(parts).encode()


def _render_members(value: dict, parts: list[str]) -> None:
    for name, member in value.items():
        _render(name, member, parts)


def _render(name: str, value: object, parts: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, list):
        item = LIST_ITEMS.get(name)
        if item is None:
            raise KeyError(f"{name} is not a known list element")
        parts.append(f"<{name}>")
        for entry in value:
            _render(item, entry, parts)
        parts.append(f"</{name}>")
    elif isinstance(value, dict):
        parts.append(f"<{name}>")
        _render_members(value, parts)
        parts.append(f"</{name}>")
    elif isinstance(value, bool):
        parts.append(f"<{name}>{'true' if value else 'false'}</{name}>")
    else:
        parts.append(f"<{name}>{escape(str(value))}</{name}>")
