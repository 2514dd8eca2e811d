"""Zone images compared by what they answer, not byte for byte.

A grafted image (``fastdns._zcompile.graft_image``) keeps the old template bodies it replaced
and puts the new ones at the end of its blob, so it differs in bytes from a full compile of the
same records while answering every query alike. ``answer_table`` reads an image into what the
hot path answers from: the trie (labels, flags, children, wildcard, parent) and, per node, the
template contents (body, compression-pointer and additional-RR positions, counts, flags) for
each type and for the default; equal tables answer every query alike.
"""

from __future__ import annotations

from fastdns.image import HEADER, NODE, TEMPLATE, TMPL_POLICY, TYPE_ENTRY

__all__ = ["answer_table"]


def answer_table(image) -> tuple:
    data = bytes(image)
    h = HEADER.unpack_from(data)
    (nodes, nodes_off, types, types_off, tmpls, tmpls_off, _labels_len, labels_off,
     _blob_len, blob_off) = h[2:12]  # fmt: skip
    assert h[17] == 0, "policy groups are not compared here"

    def template(index: int) -> tuple:
        if index & TMPL_POLICY:
            raise AssertionError("policy groups are not compared here")
        assert index < tmpls
        fields = TEMPLATE.unpack_from(data, tmpls_off + TEMPLATE.size * index)
        body_off, ptr_off, mark_off, body_len, ptr_count = fields[:5]
        an, ns, ar, required, flags, qlen, twin = fields[5:]
        at = blob_off
        return (
            data[at + body_off : at + body_off + body_len],
            data[at + ptr_off : at + ptr_off + 2 * ptr_count],
            data[at + mark_off : at + mark_off + 2 * ar],
            an, ns, ar, required, flags, qlen, twin and template(twin),
        )  # fmt: skip

    table = []
    for i in range(nodes):
        label_off, first, children, parent, wildcard, types_first, types_count, flags, default = (
            NODE.unpack_from(data, nodes_off + NODE.size * i)
        )
        assert types_first + types_count <= types
        at = labels_off + label_off
        label = data[at + 1 : at + 1 + data[at]]
        entries = []
        for k in range(types_first, types_first + types_count):
            qtype, _reserved, tmpl = TYPE_ENTRY.unpack_from(data, types_off + TYPE_ENTRY.size * k)
            entries.append((qtype, template(tmpl)))
        table.append((label, first, children, parent, wildcard, flags, template(default), entries))
    apex = data[h[12] : h[12] + h[13]]
    return apex, h[14], template(0), template(1), table
