# Declarations of the hot path: the compiled-image layout (mirrors fastdns/image.py) and the
# parsed-query record. Bodies live in the .pxi files that ext/_core.pyx includes, so the whole
# per-packet path is one C compilation unit.
from libc.stdint cimport uint8_t, uint16_t, uint32_t

cdef enum:
    IMAGE_VERSION = 1
    NONE_INDEX = 0xFFFFFFFF
    HEADER_LEN = 12
    MAX_NAME_WIRE = 255
    MAX_LABELS = 128
    MAX_MESSAGE = 65535
    MIN_UDP_PAYLOAD = 512          # RFC 1035 §4.2.1; RFC 6891 §6.2.5: never less than 512
    OPT_RR_LEN = 11                # root owner, TYPE, CLASS, TTL, RDLEN=0

    # node flags (fastdns/image.py)
    NODE_CUT = 0x1
    NODE_APEX = 0x2
    # template flags: the low 4 bits are the RCODE
    TMPL_AA = 0x10
    TMPL_OWNER_IS_QNAME = 0x20
    TMPL_ALWAYS_TC = 0x40
    # the compiler's first two templates in every zone image
    TEMPLATE_NODATA = 0
    TEMPLATE_NXDOMAIN = 1

    # DNS constants
    RCODE_NOERROR = 0
    RCODE_FORMERR = 1
    RCODE_SERVFAIL = 2
    RCODE_NOTIMP = 4
    RCODE_REFUSED = 5
    EXT_RCODE_BADVERS = 1          # RCODE 16 = ext-rcode 1 << 4 (RFC 6891 §6.1.3)
    TYPE_OPT = 41
    TYPE_DS = 43
    TYPE_IXFR = 251
    TYPE_AXFR = 252
    CLASS_IN = 1

    # outcome of parsing a query
    PARSE_OK = 0
    PARSE_DROP = 1                 # not worth an answer (too short, QR set)
    PARSE_FORMERR = 2              # malformed before the question was understood
    PARSE_FORMERR_QUESTION = 3     # the question parsed; something after it is malformed


ctypedef struct ImageHeader:
    char magic[4]
    uint32_t version
    uint32_t node_count
    uint32_t nodes_off
    uint32_t type_count
    uint32_t types_off
    uint32_t tmpl_count
    uint32_t tmpls_off
    uint32_t labels_len
    uint32_t labels_off
    uint32_t blob_len
    uint32_t blob_off
    uint32_t apex_off
    uint32_t apex_len
    uint32_t apex_labels
    uint32_t total_len
    uint32_t reserved0
    uint32_t reserved1

ctypedef struct ImgNode:
    uint32_t label_off       # into labels: length octet, then the lower-cased label
    uint32_t first_child     # children are contiguous and sorted canonically
    uint32_t child_count
    uint32_t parent
    uint32_t wildcard        # the '*' child, or NONE_INDEX
    uint32_t types_first     # first TypeEntry of this node
    uint16_t types_count
    uint16_t flags
    uint32_t default_tmpl    # template for a QTYPE not in the table (index trie: zone number)

ctypedef struct ImgType:
    uint16_t qtype
    uint16_t reserved
    uint32_t tmpl

ctypedef struct ImgTemplate:
    uint32_t body_off        # into blob
    uint32_t ptr_off         # into blob: u16 LE body offsets of compression pointers, ascending
    uint32_t mark_off        # into blob: u16 LE body offsets where each additional RR starts
    uint16_t body_len
    uint16_t ptr_count
    uint16_t an
    uint16_t ns
    uint16_t ar
    uint16_t ar_required     # leading additional RRs that must fit, else TC (RFC 9471 glue)
    uint16_t flags
    uint16_t qname_len       # wire length of the name this template was compiled against
    uint32_t reserved

# A validated image, as plain C pointers into a buffer kept alive by its Python owner.
ctypedef struct Image:
    const ImageHeader* hdr
    const ImgNode* nodes
    const ImgType* types
    const ImgTemplate* tmpls
    const uint8_t* labels
    const uint8_t* blob
    uint32_t apex_labels

ctypedef struct Query:
    const uint8_t* pkt
    Py_ssize_t len
    int opcode
    uint16_t qdcount
    uint16_t ancount
    uint16_t nscount
    uint16_t arcount
    int qname_len                 # wire length of QNAME, root octet included
    int nlabels                   # labels of QNAME, root excluded
    uint8_t lname[MAX_NAME_WIRE + 1]       # QNAME lower-cased (RFC 4343: ASCII only)
    uint8_t label_pos[MAX_LABELS]          # offset in lname of each label's length octet
    uint16_t qtype
    uint16_t qclass
    int question_end              # offset just past QCLASS
    bint has_opt
    uint16_t udp_size
    uint8_t edns_version
    bint dnssec_ok
