/* ctl: what the keeper's notes say, in words, for `ccm-early events` and
 * for the keeper's own journal entries: one wording in both places. */
#include <stdio.h>

#include "client/ctl.h"

const char *ctl_note_object(uint16_t kind)
{
	static const char *const names[] = {
		[CTL_NOTE_STATE] = "state",         [CTL_NOTE_HANDSHAKE] = "handshake",
		[CTL_NOTE_LINK] = "link",           [CTL_NOTE_PARTNER] = "partner",
		[CTL_NOTE_FAILOVER] = "failover",   [CTL_NOTE_CLIENT] = "client",
		[CTL_NOTE_TERMINATING] = "terminating", [CTL_NOTE_NOW_DONE] = "-",
	};

	return kind < sizeof(names) / sizeof(names[0]) && names[kind] ? names[kind] : "?";
}

int ctl_note_text(const struct ctl_note *n, char *buf, size_t len)
{
	/* The keeper is trusted, but a string must end where it says. */
	int sl = (int)sizeof(n->state) - 1, nl = (int)sizeof(n->name) - 1;

	switch (n->kind) {
	case CTL_NOTE_LINK:
		return snprintf(buf, len, "link %u %.*s", n->link, sl, n->state);
	case CTL_NOTE_PARTNER:
		return snprintf(buf, len, "partner node=%u epoch=%llu %.*s", n->partner_node,
				(unsigned long long)n->partner_epoch, sl, n->state);
	case CTL_NOTE_FAILOVER:
		return snprintf(buf, len, "failover link=%u", n->link);
	case CTL_NOTE_CLIENT:
		return snprintf(buf, len, "client %.*s %.*s", nl, n->name, sl, n->state);
	default:
		return snprintf(buf, len, "%s%s%.*s", ctl_note_object(n->kind), n->state[0] ? " " : "",
				sl, n->state);
	}
}
