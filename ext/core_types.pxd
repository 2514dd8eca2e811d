# Declarations of the hot path: the compiled-image layout (mirrors fastdns/image.py) and the
# parsed-query record. Bodies live in the .pxi files that ext/_core.pyx includes, so the whole
# per-packet path is one C compilation unit.
from libc.stdint cimport uint8_t, uint16_t, uint32_t

cdef enum:
    IMAGE_VERSION = 2
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
    TMPL_DENIAL = 0x80             # signed twin of NODATA/NXDOMAIN: append the NSEC3 proof
    NSEC3_HASH_LEN = 20            # SHA-1 (RFC 5155 §11)
    MAX_NSEC3_PROOF = 3            # RFC 5155 §7.2.2: closest encloser, next closer, wildcard
    DENIAL_NSEC3 = 0               # ImgOnline.denial
    DENIAL_COMPACT = 1
    # the compiler's first two templates in every zone image
    TEMPLATE_NODATA = 0
    TEMPLATE_NXDOMAIN = 1

    # DNS constants
    RCODE_NOERROR = 0
    RCODE_FORMERR = 1
    RCODE_SERVFAIL = 2
    RCODE_NOTIMP = 4
    RCODE_REFUSED = 5
    OPCODE_NOTIFY = 4
    OPCODE_UPDATE = 5
    EXT_RCODE_BADVERS = 1          # RCODE 16 = ext-rcode 1 << 4 (RFC 6891 §6.1.3)
    TYPE_OPT = 41
    TYPE_DS = 43
    TYPE_TSIG = 250
    TYPE_IXFR = 251
    TYPE_AXFR = 252
    CLASS_IN = 1

    # routing policies (fastdns/policy.py): a template index with TMPL_POLICY set names a
    # policy group, evaluated per query to the template of the member it chooses
    TMPL_POLICY = 0x80000000
    POLICY_CHAIN = 1               # candidates in a fixed order: the first healthy (failover)
    POLICY_CLASSIFIED = 2          # a chain per client class (geo, latency, IP-based, proximity)
    POLICY_WEIGHTED = 3
    POLICY_MULTIVALUE = 4
    HEALTH_ALWAYS = 0xFFFFFFFF     # a member without a health check is always healthy
    HEALTH_GROUP = 0x80000000      # healthy when any member of group (low bits) is healthy
    MULTIVALUE_MAX = 8             # Route 53 answers with up to eight healthy records
    MAX_POLICY_DEPTH = 4           # alias -> group -> alias ... evaluation depth
    NO_CLASS = 0xFFFFFFFF
    NO_NETWORK = 0xFFFFFFFF
    OPTION_ECS = 8                 # EDNS Client Subnet (RFC 7871 §6)
    ECS_FIXED_LEN = 4              # FAMILY, SOURCE PREFIX-LENGTH, SCOPE PREFIX-LENGTH

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
    uint32_t nsec3_off           # signed zones: Nsec3Entry[nsec3_count] sorted by hash
    uint32_t nsec3_count         # 0: the zone is not signed
    uint32_t node_sec_off        # NodeSec[node_count] (NSEC3), NodeNsec[node_count] (compact)
    uint32_t online_off          # into blob: the zone's ImgOnline record; 0: none

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

# A routing-policy group (16 bytes; the image header's reserved0/reserved1 give the offset of
# the group array and its length).
ctypedef struct ImgGroup:
    uint8_t kind              # POLICY_*
    uint8_t classifier        # POLICY_CLASSIFIED: which of the catalog's classifiers
    uint16_t member_count
    uint32_t members_off      # into blob: ImgMember[member_count]
    uint32_t chains_off       # into blob: u32 chain offsets, one per class + one for "no class"
    uint32_t class_count      # (POLICY_CHAIN: 0, so one chain); a chain is u16 n, u16 members[n]

ctypedef struct ImgMember:
    uint32_t tmpl             # the member's answer (never TMPL_POLICY)
    uint32_t health           # health slot, HEALTH_ALWAYS, or HEALTH_GROUP | group
    uint16_t weight           # POLICY_WEIGHTED
    uint16_t flags

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
    uint32_t twin            # signed zones: the template to send under DO (0: none)

# A signed zone's NSEC3 chain (fastdns/image.py NSEC3_ENTRY, NODE_SEC): entries sorted by hash,
# each the wire form (no compression) of one NSEC3 RR and its RRSIGs in the blob; per node its
# own entry and the entry covering the wildcard below it (NONE_INDEX when it has none).
ctypedef struct Nsec3Entry:
    uint8_t hash[20]
    uint32_t wire_off        # into blob
    uint16_t wire_len
    uint16_t rr_count

ctypedef struct NodeSec:
    uint32_t match
    uint32_t wild_cover

# A zone signed online (fastdns/image.py ONLINE): the signing ZSK and how denial is answered.
# In compact-denial zones (RFC 9824) each node has a NodeNsec: the type bitmap (RFC 4034
# §4.1.2 wire form) of the NSEC made for that name at query time.
ctypedef struct ImgOnline:
    uint32_t key_off         # into blob: the ZSK's private key, PKCS#8 DER
    uint16_t key_len
    uint16_t key_tag
    uint32_t nsec_ttl        # RFC 4034 §4: the SOA negative TTL (RFC 2308 §3)
    uint8_t algorithm
    uint8_t denial           # DENIAL_NSEC3 or DENIAL_COMPACT
    uint16_t reserved

ctypedef struct NodeNsec:
    uint32_t bitmap_off      # into blob
    uint32_t bitmap_len

# A client-address classifier (fastdns/geo/ranges.py): sorted non-overlapping ranges, the most
# specific configured network winning. "FDC1": v4 entries (start, end, class) as little-endian
# u32s, v6 entries (16-octet network-order start and end, class, 0). "FDC2" adds to each entry
# the network behind it and a network table (class, prefix length, parent), so that an ECS
# source prefix shorter than a configured network does not match it (IP-based routing).
ctypedef struct RangeV6:
    uint8_t start[16]
    uint8_t end[16]           # inclusive
    uint32_t cls
    uint32_t network          # FDC2; 0 in FDC1

ctypedef struct NetworkC:
    uint32_t cls
    uint32_t prefix_len
    uint32_t parent           # NO_NETWORK: none

ctypedef struct ClassifierC:
    const uint32_t* v4        # v4_words u32s per entry: start, end, class[, network]
    uint32_t v4_count
    uint32_t v4_words         # 3 (FDC1) or 4 (FDC2)
    const RangeV6* v6
    uint32_t v6_count
    const NetworkC* networks  # FDC2, else NULL
    uint32_t network_count

# A validated image, as plain C pointers into a buffer kept alive by its Python owner.
ctypedef struct Image:
    const ImageHeader* hdr
    const ImgNode* nodes
    const ImgType* types
    const ImgTemplate* tmpls
    const uint8_t* labels
    const uint8_t* blob
    uint32_t apex_labels
    const ImgGroup* groups
    uint32_t group_count
    const Nsec3Entry* nsec3         # NULL when the zone is not signed
    uint32_t nsec3_count
    const NodeSec* node_sec
    bint signed_zone                # NSEC3 chain or compact denial: templates have twins
    bint compact                    # denial by compact NSEC made per query (RFC 9824)
    const NodeNsec* node_nsec       # compact: per node its NSEC type bitmap
    uint32_t nsec_ttl
    const ImgOnline* online         # NULL: not signed online
    void* zsk                       # EVP_PKEY* of the ZSK signing online, or NULL
    void* sign_ctx                  # EVP_PKEY_CTX (P-256) or EVP_MD_CTX (Ed25519): online.pxi
    uint8_t zsk_id[32]              # SHA-256 of its DER: the signature cache's key id
    uint16_t zsk_tag
    uint8_t zsk_algorithm

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
    bint has_ecs                  # EDNS Client Subnet option present and valid (RFC 7871)
    uint16_t ecs_family           # 1 IPv4, 2 IPv6
    uint8_t ecs_source            # SOURCE PREFIX-LENGTH
    uint8_t ecs_addr_len          # octets of ADDRESS sent
    uint8_t ecs_addr[16]
    bint has_tsig                 # the last RR is a TSIG (RFC 8945 §5.1): the control plane's


# Where a query comes from, for routing: the ECS subnet, else the resolver's address.
ctypedef struct Client:
    int family                    # 4, 6, or 0 (unknown: policies answer as for "no class")
    uint8_t addr[16]              # IPv4 in the first 4 octets
    int prefix                    # bits of addr that are known (32/128, or the ECS source)
    int scope                     # out: RFC 7871 SCOPE PREFIX-LENGTH of the answer (0: any)
