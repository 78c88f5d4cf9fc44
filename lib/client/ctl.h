/* ctl: the keeper's control protocol, between the keeper and the local
 * clients (and ccm-early's own subcommands: exec, status, stop, dump).
 *
 * Transport: the Unix SOCK_SEQPACKET socket STATE_DIR/ccm.sock, one fdmsg
 * (fdmsg.h) per message, fixed little structs in host byte order (both
 * ends are on one machine) with exact lengths checked per type.  The
 * keeper checks every caller with SO_PEERCRED: root may do anything; a
 * client's descriptor may name one more uid allowed to attach to it.
 *
 * A connection that sends CTL_ATTACH becomes that client's channel: the
 * keeper answers CTL_ATTACHED and one CTL_PORT_FD per fd, then sends it
 * events and messages for as long as it stays open, and takes its WRITE,
 * READ and SEND requests.  Closing it detaches.  The fds survive exec, so
 * `ccm-early exec` hands the channel itself to the service it starts.
 *
 * Windows: each port's window is a memfd the client maps; WRITE pushes
 * [local_off, +len) of our window to remote_off of the partner's, READ
 * pulls the partner's bytes into ours -- one-sided operations carried out
 * by the keeper, which owns the transport, with no copy on our side.
 * CTL_F_NOTIFY on a WRITE makes the partner's keeper signal the partner
 * client's event fd (a pipe) for that port once the bytes have landed. */
#ifndef CCM_CTL_H
#define CCM_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"

#define CTL_SOCKET_NAME "ccm.sock"
#define CTL_MSG_MAX     CCM_PORT_MSG_MAX  /* a port message's payload */

enum ctl_type {
	/* client -> keeper */
	CTL_ATTACH = 1,      /* struct ctl_attach */
	CTL_WRITE = 2,       /* struct ctl_rw */
	CTL_READ = 3,        /* struct ctl_rw */
	CTL_SEND = 4,        /* struct ctl_send_hdr + payload */
	CTL_STATUS = 5,      /* empty */
	CTL_STOP = 6,        /* struct ctl_stop (root only) */
	CTL_STATE = 7,       /* empty */
	CTL_RELOAD_KEYS = 8, /* empty (root only): read the key files again;
	                        CTL_DONE, or CTL_ERROR saying why not */
	CTL_EVENTS = 9,      /* struct ctl_events: from now on this connection
	                        gets a CTL_NOTE for every change (anyone may) */
	/* keeper -> client */
	CTL_ATTACHED = 64,   /* struct ctl_attached */
	CTL_PORT_FD = 65,    /* struct ctl_port_fd, with the fd */
	CTL_DONE = 66,       /* struct ctl_done */
	CTL_EVENT = 67,      /* struct ctl_event */
	CTL_MSG = 68,        /* struct ctl_send_hdr + payload: from the partner's client */
	CTL_STATUS_REPLY = 69, /* the handoff as JSON text */
	CTL_ERROR = 70,      /* struct ctl_error: a request refused */
	CTL_STATE_REPLY = 71, /* the handoff as the `state` file's text (what the
	                         keeper knows now, even when it could not write
	                         the file); CTL_ERROR -EMSGSIZE if it does not
	                         fit one message */
	CTL_NOTE = 72,       /* struct ctl_note: a change the keeper saw */
};

/* `ccm-early events`: with now, what is comes first (exists = 1, then
 * CTL_NOTE_NOW_DONE), as `drbdsetup events2 --now` does.  A watcher that
 * does not read is dropped once CONTROL_OUT_MAX waits for it. */
struct ctl_events {
	uint8_t now;
	uint8_t pad[7];
};

enum ctl_note_kind {
	CTL_NOTE_STATE = 1,        /* state: the handoff's (connected, ...) */
	CTL_NOTE_HANDSHAKE = 2,    /* state: the handshake machine's */
	CTL_NOTE_LINK = 3,         /* link, state (down, connecting, ..., up) */
	CTL_NOTE_PARTNER = 4,      /* state: ready, lost, back; partner node, epoch */
	CTL_NOTE_FAILOVER = 5,     /* link: it went down, its traffic moved */
	CTL_NOTE_CLIENT = 6,       /* name, state: attached, detached */
	CTL_NOTE_TERMINATING = 7,  /* state: stop or restart */
	CTL_NOTE_NOW_DONE = 8,     /* the end of what is (with now) */
};

struct ctl_note {
	uint16_t kind;             /* enum ctl_note_kind */
	uint8_t exists;            /* 1: what is, at subscribing; 0: a change */
	uint8_t link;
	uint32_t partner_node;
	uint64_t partner_epoch;
	char state[16];            /* NUL-terminated */
	char name[CCM_NAME_MAX + 1];  /* a client's, or "" */
};

/* A note's object ("link", "partner", ...), and its words after the
 * change/exists type: "link 0 up", "partner node=2 epoch=7 lost".
 * ctl_note_text returns what snprintf does. */
const char *ctl_note_object(uint16_t kind);
int ctl_note_text(const struct ctl_note *n, char *buf, size_t len);

enum ctl_event_type {
	CTL_EV_PARTNER_READY = 1,  /* the partner's client has its ports too */
	CTL_EV_PARTNER_LOST = 2,   /* heartbeats stopped, or the link went */
	CTL_EV_PARTNER_BACK = 3,   /* connected again (epoch says whether it rebooted) */
	CTL_EV_TERMINATING = 4,    /* close your ports: the keeper is stopping */
	CTL_EV_LINK_DOWN = 5,      /* one interconnect lost; traffic moved */
	CTL_EV_LINK_UP = 6,
	CTL_EV_COUNT               /* not an event: one past the last */
};

enum { CTL_F_NOTIFY = 1u << 0 };

enum { CTL_FD_WINDOW = 0, CTL_FD_EVENT = 1 };

struct ctl_attach {
	char name[CCM_NAME_MAX + 1];
};

struct ctl_attached {
	uint16_t nports;
	uint16_t partner_ready;    /* 1 when the partner is connected now */
	uint32_t port_size;
	uint32_t partner_node;
	uint32_t reserved;
	uint64_t partner_epoch;
};

struct ctl_port_fd {
	uint16_t index;
	uint16_t kind;             /* CTL_FD_WINDOW or CTL_FD_EVENT */
};

struct ctl_rw {
	uint32_t tag;              /* echoed in CTL_DONE */
	uint16_t port;
	uint16_t flags;            /* CTL_F_NOTIFY (WRITE only) */
	uint32_t local_off;
	uint32_t remote_off;
	uint32_t len;              /* 1..CCM_OP_MAX, within both windows */
};

struct ctl_send_hdr {
	uint32_t tag;              /* CTL_SEND: echoed in CTL_DONE; CTL_MSG: 0 */
	uint16_t port;
	uint16_t reserved;
	/* then 1..CTL_MSG_MAX bytes */
};

struct ctl_done {
	uint32_t tag;
	int32_t status;            /* 0 or a negative errno */
};

struct ctl_event {
	uint16_t type;             /* enum ctl_event_type */
	uint16_t link;             /* LINK_DOWN, LINK_UP: which interconnect;
	                              TERMINATING: 1 if the keeper handshakes
	                              again in the same process (stop --restart):
	                              attach again once it serves */
	uint32_t partner_node;
	uint64_t partner_epoch;
};

struct ctl_stop {
	uint32_t restart;          /* 1: handshake again after stopping */
	uint32_t grace_ms;         /* how long clients get to close their ports */
};

struct ctl_error {
	int32_t status;            /* negative errno */
	char msg[200];
};

#endif
