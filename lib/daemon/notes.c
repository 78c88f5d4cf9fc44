/* notes: what the keeper tells about itself -- the `ccm-early events`
 * watchers every change of the handoff, the handshake and the links (and
 * the journal, when the keeper logs there), and its clients what happens to
 * the partner and the links.  It calls session_base.c only. */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "daemon/session_int.h"

/* --- events: what `ccm-early events` watchers are told ------------------------ */

/* A change goes to the journal too, when the keeper logs there: an entry
 * of its own, in the words of `ccm-early events`, whose fields say what
 * changed (journalctl CCM_EVENT=link CCM_LINK=0). */
static void journal_note(const struct session *s, const struct ctl_note *n, bool partner)
{
	char fields[320], text[160];  /* fields: 203 bytes at most */
	int k;

	if (!s->log->journal || s->log->journal->fd < 0)
		return;
	k = snprintf(fields, sizeof(fields), "CCM_EVENT=%s\nCCM_STATE=%s\n", ctl_note_object(n->kind),
		     n->state);
	if (n->kind == CTL_NOTE_LINK || n->kind == CTL_NOTE_FAILOVER)
		k += snprintf(fields + k, sizeof(fields) - (size_t)k, "CCM_LINK=%u\n", n->link);
	if (partner)
		k += snprintf(fields + k, sizeof(fields) - (size_t)k,
			      "CCM_PARTNER_NODE=%u\nCCM_PARTNER_EPOCH=%llu\n", n->partner_node,
			      (unsigned long long)n->partner_epoch);
	if (n->name[0])
		snprintf(fields + k, sizeof(fields) - (size_t)k, "CCM_CLIENT=%s\n", n->name);
	ctl_note_text(n, text, sizeof(text));
	/* A lost partner, or a failover off a failed link, is a warning; the rest is news. */
	(void)journal_send(s->log->journal,
			   n->kind == CTL_NOTE_FAILOVER || !strcmp(n->state, "lost") ? 4 : 6,
			   s->log->node, s->log->instance, fields, text);
}

static void note_to(struct session *s, uint64_t conn, uint16_t kind, int link,
		    const char *state, const char *name)
{
	struct ctl_note n = { .kind = kind, .exists = conn != 0, .link = (uint8_t)(link < 0 ? 0 : link) };

	if (!s->control)
		return;
	if (sess_ex_started(s)) {
		n.partner_node = s->ex->peer.node_id;
		n.partner_epoch = s->ex->peer.epoch;
	}
	snprintf(n.state, sizeof(n.state), "%s", state);
	snprintf(n.name, sizeof(n.name), "%s", name ? name : "");
	if (conn) {
		control_reply(s->control, conn, CTL_NOTE, &n, sizeof(n));
	} else {
		control_note(s->control, &n);
		journal_note(s, &n, n.partner_node != 0);  /* node ids start at 1 */
	}
}

void notes_change(struct session *s, uint16_t kind, int link, const char *state, const char *name)
{
	note_to(s, 0, kind, link, state, name);
}

void notes_tell_changes(struct session *s)
{
	if (!s->control)
		return;
	if (s->noted_state != (int)s->handoff_state + 1) {
		s->noted_state = (int)s->handoff_state + 1;
		notes_change(s, CTL_NOTE_STATE, -1, handoff_state_name(s->handoff_state), NULL);
	}
	if (s->noted_hs != (int)s->hs.state + 1) {
		s->noted_hs = (int)s->hs.state + 1;
		notes_change(s, CTL_NOTE_HANDSHAKE, -1, hs_state_name(s->hs.state), NULL);
	}
	for (int i = 0; i < s->nlinks; i++)
		if (s->noted_link[i] != (int)s->links[i].h.state + 1) {
			s->noted_link[i] = (int)s->links[i].h.state + 1;
			notes_change(s, CTL_NOTE_LINK, i, link_state_name(s->links[i].h.state), NULL);
		}
}

/* `events --now`: what is, to conn alone, then the end of it. */
void notes_tell_now(struct session *s, uint64_t conn)
{
	note_to(s, conn, CTL_NOTE_STATE, -1, handoff_state_name(s->handoff_state), NULL);
	note_to(s, conn, CTL_NOTE_HANDSHAKE, -1, hs_state_name(s->hs.state), NULL);
	for (int i = 0; i < s->nlinks; i++)
		note_to(s, conn, CTL_NOTE_LINK, i, link_state_name(s->links[i].h.state), NULL);
	if (sess_connected(s))
		note_to(s, conn, CTL_NOTE_PARTNER, -1, sess_unreachable(s) ? "lost" : "ready", NULL);
	for (int c = 0; c < s->ports->nclients; c++)
		if (control_has_channel(s->control, s->ports->c[c].name))
			note_to(s, conn, CTL_NOTE_CLIENT, -1, "attached", s->ports->c[c].name);
	note_to(s, conn, CTL_NOTE_NOW_DONE, -1, "", NULL);
}

void notes_tell_clients(struct session *s, enum ctl_event_type type, int link)
{
	struct ctl_event ev = { .type = (uint16_t)type, .link = (uint16_t)(link < 0 ? 0 : link) };

	/* What the clients heard is what the status counts, and what the
	 * watchers hear. */
	if ((unsigned)type < CTL_EV_COUNT)
		s->events_told[type]++;
	if (type == CTL_EV_PARTNER_READY || type == CTL_EV_PARTNER_LOST || type == CTL_EV_PARTNER_BACK)
		notes_change(s, CTL_NOTE_PARTNER, -1, type == CTL_EV_PARTNER_READY ? "ready" :
		     type == CTL_EV_PARTNER_LOST ? "lost" : "back", NULL);
	else if (type == CTL_EV_LINK_DOWN)
		notes_change(s, CTL_NOTE_FAILOVER, link, "", NULL);
	else if (type == CTL_EV_TERMINATING)
		notes_change(s, CTL_NOTE_TERMINATING, -1, link ? "restart" : "stop", NULL);

	if (!s->control)
		return;
	if (sess_ex_started(s)) {
		ev.partner_node = s->ex->peer.node_id;
		ev.partner_epoch = s->ex->peer.epoch;
	}
	control_event(s->control, NULL, &ev);
}

/* The boot may go on: the loop tells whoever waits, and the process
 * becomes the keeper that outlives the initramfs (loop.c). */
void notes_handed_off(struct session *s, bool connected)
{
	if (s->handed_off || s->opts->once)
		return;
	s->handed_off = true;
	/* Told to stop before it got here, it stays stopping. */
	if (s->daemon == DAEMON_STARTING)
		sess_daemon_enter(s, DAEMON_SERVING);
	s->notices |= connected ? SESSION_HANDED_OFF : SESSION_HANDED_OFF_DEGRADED;
	log_at(s->log, LOG_NOTE, "handed off (%s); serving clients on %s",
	       connected ? "connected" : "degraded", control_path(s->control));
}
