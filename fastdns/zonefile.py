"""RFC 1035 master files -> :class:`fastdns.model.Zone`.

Two readers give the same model (tests/test_zonefile_native.py checks it for every zone file of
the test corpus): ``"native"``, the default, is the scanner in the extension
(:mod:`fastdns._zscanner`, C) followed by :func:`fastdns.zonescan.zone_from_scan`;
``"dnspython"`` is dnspython's reader, the reference the scanner is tested against, six to ten
times slower (bench/zone_load_speed.py). Syntax errors name the same file, and the same line
except in a record that spans lines, where the scanner names the line the record starts on and
dnspython sometimes a later one (the line of the token it was reading); their wording differs.

With the dnspython reader, dnspython does the parsing ($ORIGIN, $TTL, $INCLUDE, $GENERATE,
parentheses, relative names, RFC 3597 ``\\# len hex`` generic rdata). Three small hooks into its
reader add what a server needs and dnspython does not keep:

* where every record came from (``file:line`` of the line that starts it), so validation errors
  can name a line;
* the exact line of a syntax error (dnspython's own messages are often one line late, because
  its tokenizer counts a newline as soon as it reads it as a delimiter);
* ``$INCLUDE`` paths relative to the directory of the including file, as Knot DNS does, so a zone
  directory does not depend on the server's working directory. Absolute paths work as before.

Records whose owner lies outside the origin are kept (dnspython drops them silently) so that
validation reports each one with its line.
"""

from __future__ import annotations

import codecs
import io
import os
import re
from typing import Any, Literal

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.tokenizer
import dns.transaction
import dns.zonefile

from fastdns.model import RecordSet, SourceLocation, Zone, ZoneError, ZoneLoadError
from fastdns.validate import validate_zone

__all__ = ["ZoneReader", "load_zone_file", "origin_from_file_name", "parse_zone_file"]

ZONE_FILE_SUFFIX = ".zone"

ZoneReader = Literal["native", "dnspython"]
"""Which parser reads a master file: the extension's scanner, or dnspython's reader."""


def origin_from_file_name(path: str | os.PathLike[str]) -> dns.name.Name | None:
    """The origin a file name gives: ``example.com.zone`` or ``example.com..zone`` ->
    ``example.com.``; ``..zone`` -> the root. ``None`` when the name does not end in ``.zone``.

    :raises ZoneLoadError: the part before ``.zone`` is not a domain name.
    """
    base = os.path.basename(os.fspath(path))
    if not base.endswith(ZONE_FILE_SUFFIX):
        return None
    stem = base[: -len(ZONE_FILE_SUFFIX)]
    try:
        if not stem:
            raise dns.exception.SyntaxError("empty name")
        return dns.name.from_text(stem)
    except dns.exception.DNSException as e:
        raise ZoneLoadError(
            [ZoneError(os.fspath(path), 0, f"file name does not give a zone origin: {e}")]
        ) from None


def parse_zone_file(
    path: str | os.PathLike[str],
    origin: dns.name.Name | str | None = None,
    reader: ZoneReader = "native",
) -> Zone:
    """Parse a master file into a :class:`Zone` without validating it.

    ``origin`` defaults to the file name (:func:`origin_from_file_name`) and, for a file whose
    name does not end in ``.zone``, to the file's first ``$ORIGIN``. Each record set gets the
    location of its first record. Records of one (name, type) with different TTLs become one
    record set with the smallest TTL (see :func:`_build_zone`). Duplicate records are merged.
    Only class IN is accepted. Records outside the origin are kept for validation to report.

    ``reader`` chooses the parser (:data:`ZoneReader`); both give equal zones.

    :raises ZoneLoadError: the file cannot be read or has a syntax error (one error, with the
        file and line of the problem; for ``$INCLUDE`` d files, the included file's name).
    """
    file = os.fspath(path)
    if isinstance(origin, str):
        try:
            origin = dns.name.from_text(origin)
        except dns.exception.DNSException as e:
            raise ZoneLoadError([ZoneError(file, 0, f"bad zone origin {origin!r}: {e}")]) from None
    elif origin is None:
        origin = origin_from_file_name(file)
    if reader == "native":
        return _parse_native(file, origin)
    if reader != "dnspython":
        raise ValueError(f"unknown zone file reader {reader!r}")
    return _parse_dnspython(file, origin)


def load_zone_file(
    path: str | os.PathLike[str],
    origin: dns.name.Name | str | None = None,
    reader: ZoneReader = "native",
) -> Zone:
    """Parse a master file (:func:`parse_zone_file`) and validate it
    (:func:`fastdns.validate.validate_zone`).

    :raises ZoneLoadError: a syntax error, or every validation error sorted by file and line.
    """
    from fastdns.collector import collector_paused

    # Validation walks the whole new model: not with the collector's first walks of it.
    with collector_paused():
        zone = parse_zone_file(path, origin, reader)
        errors = validate_zone(zone)
    if errors:
        raise ZoneLoadError(errors)
    return zone


def _parse_native(file: str, origin: dns.name.Name | None) -> Zone:
    from fastdns._zscanner import ZoneScanError, scan_zone_file
    from fastdns.zonescan import zone_from_scan

    try:
        scanned = scan_zone_file(file, origin)
    except ZoneScanError as e:
        raise ZoneLoadError([ZoneError(e.file, e.line, e.reason)]) from None
    if origin is None and scanned.first_origin is not None:
        origin = dns.name.from_wire(scanned.first_origin, 0)[0]
    if origin is None:
        # Only reachable for a file with no relative names and no $ORIGIN.
        raise ZoneLoadError([ZoneError(file, 0, _NO_ORIGIN)])
    return zone_from_scan(scanned, origin, file)


def _parse_dnspython(file: str, origin: dns.name.Name | None) -> Zone:
    manager = _Manager(origin)
    txn = _RecordCollector(manager)
    try:
        with open(file, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ZoneLoadError([ZoneError(file, 0, f"cannot read zone file: {e.strerror}")]) from None
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        # Decoded whole so that a bad byte can be blamed on its line.
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ZoneLoadError([ZoneError(file, line, "not UTF-8 text")]) from None

    reader = _Reader(_Tokenizer(io.StringIO(text), file), txn)
    try:
        reader.read()
    except (dns.exception.DNSException, OSError, UnicodeError, ValueError) as e:
        raise ZoneLoadError([_parse_error(reader.tok, e)]) from None
    finally:
        reader.close_included_files()

    zone_origin = origin if origin is not None else txn.first_origin
    if zone_origin is None:
        # Only reachable for a file with no records and no $ORIGIN.
        raise ZoneLoadError([ZoneError(file, 0, _NO_ORIGIN)])
    return _build_zone(zone_origin, file, txn.records)


_NO_ORIGIN = (
    "no origin for relative names: name the file <origin>.zone, give an origin, or use $ORIGIN"
)


def _build_zone(
    origin: dns.name.Name,
    file: str,
    records: list[tuple[dns.name.Name, int, dns.rdata.Rdata, SourceLocation]],
) -> Zone:
    groups: dict[tuple[dns.name.Name, int], RecordSet] = {}
    rdatas: dict[tuple[dns.name.Name, int], dict[dns.rdata.Rdata, None]] = {}
    for name, ttl, rdata, location in records:
        key = (name, int(rdata.rdtype))
        rrset = groups.get(key)
        if rrset is None:
            groups[key] = RecordSet(name, rdata.rdtype, ttl, (), location)
            rdatas[key] = {}
        else:
            # RFC 2181 §5.2: all TTLs of an RRset must be equal. A file that disagrees with
            # itself gets the smallest TTL rather than a load failure; Knot DNS does the same
            # (with a warning), and the smallest TTL is the one that cannot keep stale data in
            # caches longer than any record asked for.
            rrset.ttl = min(rrset.ttl, ttl)
        # Duplicate records are one record (RFC 2181 §5); a dict keeps the file order.
        rdatas[key][rdata] = None
    zone = Zone(origin=origin, source=file)
    for key, rrset in groups.items():
        rrset.rdatas = tuple(rdatas[key])
        zone.add(rrset)
    return zone


def _parse_error(tok: _Tokenizer, error: Exception) -> ZoneError:
    """A clean ``ZoneError`` for an exception raised while reading ``tok``'s file."""
    if isinstance(error, dns.zonefile.UnknownOrigin):
        reason = _NO_ORIGIN
    elif isinstance(error, UnicodeError):
        # In an $INCLUDE d file, which dnspython decodes as it reads.
        reason = "not UTF-8 text"
    elif isinstance(error, OSError):
        # An $INCLUDE file that cannot be opened.
        name = error.filename if error.filename is not None else ""
        reason = f"cannot read included file {name}: {error.strerror}"
    else:
        reason = str(error)
        # dnspython prefixes syntax errors with its own (often one line late) "file:line: ".
        filename, line_number = tok.where()
        prefix = f"{filename}:{line_number}: "
        if reason.startswith(prefix):
            reason = reason[len(prefix) :]
        reason = _CAUGHT_PREFIX.sub("", reason)
        reason = _REASONS.get(reason, reason)
        last = tok.last_token
        if reason == "syntax error" and (last.is_identifier() or last.is_quoted_string()):
            reason = f"syntax error at {last.value!r}"
    return ZoneError(tok.filename, tok.error_line, reason)


# dnspython wraps non-syntax exceptions from rdata parsers as "caught exception <class 'X'>: ...".
_CAUGHT_PREFIX = re.compile(r"^caught exception <class '[^']*'>: ")

# dnspython messages worth saying more plainly.
_REASONS = {
    "RR class is not zone's class": "record class must be IN",
    "Text input is malformed.": "syntax error",
}


class _Tokenizer(dns.tokenizer.Tokenizer):
    """dnspython's tokenizer, plus the line to blame for an error and $INCLUDE path resolution.

    ``error_line`` is the line of the last token handed to the parser (an error found while
    parsing is about that token, or about the end of the line it ended), or, when the tokenizer
    itself fails (unbalanced parentheses, a newline in a quoted string, bad input bytes), the
    line where the current statement began.
    """

    def __init__(self, f: Any, filename: str, idna_codec: dns.name.IDNACodec | None = None):
        super().__init__(f, filename, idna_codec)
        self.statement_line = 1
        self.error_line = 1
        self._include_path_next = False
        self.last_token = dns.tokenizer.Token(dns.tokenizer.EOF)

    def _next_char_line(self) -> int:
        # The tokenizer counts a newline when it reads it, even when it then puts it back.
        return self.line_number - (1 if self.ungotten_char == "\n" else 0)

    def get(self, want_leading: bool = False, want_comment: bool = False) -> dns.tokenizer.Token:
        # dnspython's Reader.read() asks for (want_leading, want_comment) only at the start of a
        # statement (a record or a directive); nothing else does.
        statement_start = want_leading and want_comment
        if statement_start:
            self.statement_line = self._next_char_line()
        try:
            token = super().get(want_leading, want_comment)
        except Exception:
            self.error_line = self.statement_line
            raise
        if token.is_eol():
            self.error_line = self.line_number - 1
        else:
            self.error_line = self._next_char_line()
        if self._include_path_next:
            self._include_path_next = False
            if token.is_identifier() or token.is_quoted_string():
                path = os.path.join(os.path.dirname(self.filename), token.value)
                token = dns.tokenizer.Token(token.ttype, path, token.has_escape, token.comment)
        elif statement_start and token.is_identifier() and token.value.upper() == "$INCLUDE":
            self._include_path_next = True
        self.last_token = token
        return token


class _Reader(dns.zonefile.Reader):
    """dnspython's zone file reader, noting where each statement starts."""

    txn: _RecordCollector

    def __init__(self, tok: _Tokenizer, txn: _RecordCollector):
        super().__init__(tok, dns.rdataclass.IN, txn, allow_include=True)
        # dnspython skips records outside zone_origin without a word. The root contains every
        # name, so all records reach the collector and validation reports the strays (relative
        # names still resolve against current_origin, which is the real origin).
        self.zone_origin = dns.name.root

    # dnspython replaces self.tok with a plain Tokenizer for each $INCLUDE file; swap in ours so
    # included files get the same line tracking and path resolution.
    @property
    def tok(self) -> _Tokenizer:
        return self._tok

    @tok.setter
    def tok(self, tok: dns.tokenizer.Tokenizer) -> None:
        if not isinstance(tok, _Tokenizer):
            tok = _Tokenizer(tok.file, tok.filename, tok.idna_codec)
        self._tok = tok

    def close_included_files(self) -> None:
        """Close the $INCLUDE files still open after an error (the reader closes them at EOF)."""
        files = [self.current_file] + [state[3] for state in self.saved_state]
        for f in files:
            if f is not None:
                f.close()

    def _rr_line(self) -> None:
        self.txn.location = SourceLocation(self.tok.filename, self.tok.statement_line)
        super()._rr_line()

    def _generate_line(self) -> None:
        self.txn.location = SourceLocation(self.tok.filename, self.tok.statement_line)
        super()._generate_line()


class _RecordCollector(dns.transaction.Transaction):
    """A write-only transaction that keeps every record the reader adds, with its location.

    It stores records as they come instead of merging them into rdatasets as dnspython's zones
    do, so no dnspython check (such as CNAME and other data) stops the read: validation reports
    those problems itself, all at once and with lines.
    """

    def __init__(self, manager: _Manager):
        super().__init__(manager, replacement=True)
        self.records: list[tuple[dns.name.Name, int, dns.rdata.Rdata, SourceLocation]] = []
        self.location = SourceLocation("", 0)
        self.first_origin: dns.name.Name | None = None

    def add(self, *args: Any) -> None:
        # The reader only ever calls add(name, ttl, rdata).
        name, ttl, rdata = args
        self.records.append((name, ttl, rdata, self.location))

    def _set_origin(self, origin: dns.name.Name) -> None:
        # Called for every $ORIGIN; the first one is the zone's origin when none was given.
        if self.first_origin is None:
            self.first_origin = origin


class _Manager(dns.transaction.TransactionManager):
    def __init__(self, origin: dns.name.Name | None):
        self.origin = origin

    def origin_information(self) -> tuple[dns.name.Name | None, bool, dns.name.Name | None]:
        return (self.origin, False, self.origin)

    def get_class(self) -> dns.rdataclass.RdataClass:
        return dns.rdataclass.IN
