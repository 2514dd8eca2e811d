"""Domain names the way the Route 53 API writes them.

Route 53 accepts names with or without the final dot, in any case, and returns them absolute and
lower-cased; a character other than ``a-z 0-9 - _`` comes back as a backslash and *three octal
digits* (``*`` is ``\\052``) -- unlike RFC 1035 master files, whose ``\\DDD`` escapes are
decimal. Input may use the same octal escapes or ``\\X`` for a literal character.

ListResourceRecordSets and ListHostedZonesByName order names "with the labels reversed"
(``www.example.com.`` sorts as ``com.example.www.``) in ASCII order of that text, so
``sort_key`` builds exactly that string.
"""

from __future__ import annotations

import dns.name

__all__ = ["InvalidName", "name_from_text", "name_text", "sort_key"]

_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")
_MAX_NAME_WIRE = 255  # RFC 1035 §3.1
_MAX_LABEL = 63


class InvalidName(ValueError):
    """A name the API cannot accept; the message says why."""


def _labels_from_text(text: str) -> list[bytes]:
    """Split Route 53 name text into raw labels (escapes decoded, case kept)."""
    labels: list[bytes] = []
    label = bytearray()
    i = 0
    data = text.encode("utf-8")
    while i < len(data):
        c = data[i]
        if c == 0x2E:  # "."
            if not label:
                raise InvalidName(f"{text!r}: empty label")
            labels.append(bytes(label))
            label = bytearray()
            i += 1
            continue
        if c == 0x5C:  # "\"
            octal = data[i + 1 : i + 4]
            if len(octal) == 3 and all(0x30 <= d <= 0x37 for d in octal):
                label.append(int(octal, 8) & 0xFF)
                i += 4
                continue
            if i + 1 >= len(data):
                raise InvalidName(f"{text!r}: a backslash at the end")
            label.append(data[i + 1])
            i += 2
            continue
        label.append(c)
        i += 1
    if label:
        labels.append(bytes(label))
    return labels


def name_from_text(text: str) -> dns.name.Name:
    """Route 53 name text (relative or absolute) -> an absolute ``dns.name.Name``."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidName("a domain name is required")
    text = text.strip()
    if text == ".":
        return dns.name.root
    labels = _labels_from_text(text)
    for label in labels:
        if len(label) > _MAX_LABEL:
            raise InvalidName(f"{text!r}: a label is longer than {_MAX_LABEL} characters")
    if sum(len(label) + 1 for label in labels) + 1 > _MAX_NAME_WIRE:
        raise InvalidName(f"{text!r}: the name is longer than {_MAX_NAME_WIRE} octets")
    return dns.name.Name([*labels, b""])


def _label_text(label: bytes) -> str:
    out = []
    for byte in label.lower():
        if byte in _PLAIN:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def name_text(name: dns.name.Name) -> str:
    """An absolute name as Route 53 returns it: lower case, trailing dot, octal escapes."""
    labels = [label for label in name.labels if label]
    if not labels:
        return "."
    return ".".join(_label_text(label) for label in labels) + "."


def sort_key(name: dns.name.Name) -> str:
    """The text Route 53 sorts names by: labels reversed, ``com.example.www.``."""
    labels = [label for label in name.labels if label]
    if not labels:
        return "."
    return ".".join(_label_text(label) for label in reversed(labels)) + "."
