/* limits: the bounds every decoder and parser enforces.  A length or count
 * that comes off the wire or out of a file is checked against these before
 * it is used for anything. */
#ifndef CCM_LIMITS_H
#define CCM_LIMITS_H

#define CCM_NAME_MAX      31       /* client name: [a-z][a-z0-9_]{0,30} */
#define CCM_CLUSTER_MAX   63       /* cluster name: printable, no spaces */
#define CCM_CLIENTS_MAX   32       /* client descriptors per node */
#define CCM_PORTS_MAX     64       /* ports per client */
#define CCM_PORTS_TOTAL   256      /* ports per node, all clients together */
#define CCM_PORT_SIZE_MIN 4096u    /* a port window is whole pages */
#define CCM_PORT_SIZE_MAX (64u << 20)
#define CCM_NONCE_LEN     32
#define CCM_MAC_LEN       32
#define CCM_PSK_MIN       16       /* bytes of key material in a PSK file */
#define CCM_PSK_MAX       256
/* Where the keeper's handoff files and socket are, unless told otherwise. */
#define CCM_STATE_DIR_DEFAULT "/run/ccm"
#define CCM_DETAIL_MAX    127      /* decline detail text */
#define CCM_MSG_MAX       16384u   /* one small message over any transport: the
                                      largest, PORTS with 256 ports, is 12.6 KiB */
#define CCM_OP_MAX        65536u   /* one one-sided read or write */
#define CCM_PORT_MSG_MAX  3072u    /* one message between two clients' ports */
#define CCM_LINKS_MAX     4        /* interconnects between the two nodes */
#define CCM_PORT_MSG_WINDOW 64     /* messages one port may have on their way
                                      to the partner's client, unconfirmed */

/* Protocol versions this build speaks. */
#define CCM_PROTO_MIN 1
#define CCM_PROTO_MAX 1

#define CCM_DEFAULT_PORT 7471

#endif
