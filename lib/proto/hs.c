/* hs: the handshake state machine (protocol in hs.h).
 *
 * Structure: hs_step() filters what can never move the machine (stale
 * answers, unknown events), then hands the event to the handler of the
 * current state.  States are entered only through the enter_*() helpers,
 * so each state's entry actions (PUBLISH, the operation it starts, the
 * timer it arms) are written once. */
#include "proto/hs.h"

#include <stddef.h>

const struct hs_timing hs_default_timing = {
	.wait3_ms = 1000,
	.wait5_ms = 2000,
	.backoff_min_ms = 100,
	.backoff_max_ms = 2000,
};

void hs_init(struct hs *m, uint64_t my_epoch, const struct hs_timing *t)
{
	*m = (struct hs){
		.state = HS_INIT,
		.my_epoch = my_epoch,
		.timing = t ? *t : hs_default_timing,
	};
}

/* Start an action that expects an answer: the answer must carry this seq. */
static void expect(struct hs *m, struct hs_actions *act, unsigned flag)
{
	act->flags |= flag;
	act->seq = ++m->seq;
}

static void set_state(struct hs *m, struct hs_actions *act, enum hs_state s)
{
	m->state = s;
	act->flags |= HS_ACT_PUBLISH;
}

static void do_write(struct hs *m, struct hs_actions *act, uint8_t value)
{
	act->write_state = value;
	expect(m, act, HS_ACT_WRITE);
}

static void do_wait(struct hs *m, struct hs_actions *act, uint32_t ms)
{
	act->wait_ms = ms;
	expect(m, act, HS_ACT_WAIT);
}

/* min(backoff_min << (errors - 1), backoff_max), computed in 64 bits and
 * with the shift bounded so a long run of errors cannot overflow it. */
static uint32_t backoff_ms(const struct hs *m)
{
	uint32_t shift = m->errors ? m->errors - 1 : 0;
	uint64_t d;

	if (shift > 32)
		return m->timing.backoff_max_ms;
	d = (uint64_t)m->timing.backoff_min_ms << shift;
	return d < m->timing.backoff_max_ms ? (uint32_t)d : m->timing.backoff_max_ms;
}

static void enter_read1(struct hs *m, struct hs_actions *act)
{
	set_state(m, act, HS_READ1);
	m->peer_epoch = 0;      /* relearned by this READ */
	expect(m, act, HS_ACT_READ);
}

static void enter_error(struct hs *m, struct hs_actions *act, enum hs_error why)
{
	set_state(m, act, HS_ERROR);
	m->wrote5 = false;
	m->last_error = why;
	if (m->errors != UINT32_MAX)
		m->errors++;
	act->flags |= HS_ACT_REPORT;
	act->error = why;
	act->wait_ms = backoff_ms(m);
	expect(m, act, HS_ACT_BACKOFF);
}

static void enter_connected(struct hs *m, struct hs_actions *act)
{
	set_state(m, act, HS_CONNECTED);
	m->wrote5 = false;
	m->errors = 0;
	act->flags |= HS_ACT_CONNECTED;
	/* Best effort: a partner whose "5" we saw may still be waiting for
	 * ours; if the WRITE is lost, its own retry reads us connected. */
	do_write(m, act, HS_CONNECTED);
}

static void enter_write5(struct hs *m, struct hs_actions *act)
{
	set_state(m, act, HS_WRITE5);
	m->wrote5 = false;
	do_write(m, act, HS_WRITE5);
}

/* The recorded mailbox says the partner we talk to reached 5 or beyond. */
static bool mbox_confirms(const struct hs *m)
{
	return m->mbox_epoch != 0 && m->mbox_epoch == m->peer_epoch &&
	       m->mbox_state >= HS_WRITE5;
}

static void enter_read4(struct hs *m, struct hs_actions *act)
{
	set_state(m, act, HS_READ4);
	expect(m, act, HS_ACT_READ);
}

/* State 3 acts on the recorded mailbox, whether it just arrived or was
 * already there on entry (the mailbox is level-triggered): a partner in 5
 * or connected has read us, so its epoch is adopted -- but checked by a
 * READ (state 4) before anything is built on it.  The mailbox keeps a
 * crashed partner's last words until its next incarnation writes, so an
 * epoch taken from it may be dead; connecting on it straight away (3 -> 5
 * or 3 -> 6, as first specified) let the model checker in test_hs.c reach
 * both nodes connected with one of them holding the other's old epoch. */
static bool wait3_try_mailbox(struct hs *m, struct hs_actions *act)
{
	if (m->mbox_epoch == 0 || m->mbox_state < HS_WRITE5)
		return false;
	m->peer_epoch = m->mbox_epoch;
	enter_read4(m, act);
	return true;
}

static void enter_wait3(struct hs *m, struct hs_actions *act)
{
	set_state(m, act, HS_WAIT3);
	if (!wait3_try_mailbox(m, act))
		do_wait(m, act, m->timing.wait3_ms);
}

static void on_mailbox(struct hs *m, const struct hs_event *ev,
		       struct hs_actions *act)
{
	bool knows_peer;

	if (ev->to_epoch != m->my_epoch || ev->peer_epoch == 0)
		return;
	m->mbox_state = ev->peer_state;
	m->mbox_epoch = ev->peer_epoch;

	knows_peer = m->state == HS_CONNECTED ||
		     ((m->state == HS_READ4 || m->state == HS_WRITE5) &&
		      m->peer_epoch != 0);
	if (knows_peer && m->mbox_epoch != m->peer_epoch) {
		enter_error(m, act, HS_ERR_PEER_RESTARTED);
		return;
	}
	if (m->state == HS_WAIT3)
		wait3_try_mailbox(m, act);
	else if (m->state == HS_WRITE5 && m->wrote5 && mbox_confirms(m))
		enter_connected(m, act);
}

static void on_read1(struct hs *m, const struct hs_event *ev,
		     struct hs_actions *act)
{
	if (ev->type == HS_EV_READ_OK && ev->peer_epoch != 0) {
		m->peer_epoch = ev->peer_epoch;
		set_state(m, act, HS_WRITE2);
		do_write(m, act, HS_WRITE2);
	} else if (ev->type == HS_EV_READ_OK || ev->type == HS_EV_READ_FAIL) {
		/* An epoch of 0 is no partner at all: as good as a failure. */
		enter_wait3(m, act);
	}
}

static void on_write2(struct hs *m, const struct hs_event *ev,
		      struct hs_actions *act)
{
	if (ev->type == HS_EV_WRITE_OK)
		enter_read4(m, act);
	else if (ev->type == HS_EV_WRITE_FAIL)
		enter_error(m, act, HS_ERR_WRITE_FAILED);
}

static void on_wait3(struct hs *m, const struct hs_event *ev,
		     struct hs_actions *act)
{
	if (ev->type == HS_EV_TIMEOUT)
		enter_read1(m, act);
}

static void on_read4(struct hs *m, const struct hs_event *ev,
		     struct hs_actions *act)
{
	if (ev->type == HS_EV_READ_OK && ev->peer_epoch == m->peer_epoch)
		enter_write5(m, act);
	else if (ev->type == HS_EV_READ_OK)
		enter_error(m, act, HS_ERR_PEER_RESTARTED);
	else if (ev->type == HS_EV_READ_FAIL)
		enter_error(m, act, HS_ERR_READ_FAILED);
}

static void on_write5(struct hs *m, const struct hs_event *ev,
		      struct hs_actions *act)
{
	if (ev->type == HS_EV_WRITE_OK && !m->wrote5) {
		m->wrote5 = true;
		if (mbox_confirms(m))
			enter_connected(m, act);
		else
			do_wait(m, act, m->timing.wait5_ms);
	} else if (ev->type == HS_EV_WRITE_FAIL && !m->wrote5) {
		enter_error(m, act, HS_ERR_WRITE_FAILED);
	} else if (ev->type == HS_EV_TIMEOUT && m->wrote5) {
		enter_error(m, act, HS_ERR_PEER_SILENT);
	}
}

static void on_connected(struct hs *m, const struct hs_event *ev,
			 struct hs_actions *act)
{
	/* The answer to our best-effort WRITE 6 changes nothing. */
	if (ev->type == HS_EV_PEER_LOST)
		enter_error(m, act, HS_ERR_PEER_LOST);
}

static void on_error(struct hs *m, const struct hs_event *ev,
		     struct hs_actions *act)
{
	if (ev->type == HS_EV_BACKOFF_DONE)
		enter_read1(m, act);
}

static bool carries_seq(enum hs_event_type t)
{
	return t != HS_EV_START && t != HS_EV_MAILBOX && t != HS_EV_PEER_LOST;
}

void hs_step(struct hs *m, const struct hs_event *ev, struct hs_actions *act)
{
	*act = (struct hs_actions){ .error = HS_ERR_NONE };

	if ((unsigned)ev->type >= HS_NEVENTS)
		return;
	if (carries_seq(ev->type) && ev->seq != m->seq)
		return;
	if (ev->type == HS_EV_START) {
		if (m->state == HS_INIT)
			enter_read1(m, act);
		return;
	}
	if (ev->type == HS_EV_MAILBOX) {
		on_mailbox(m, ev, act);
		return;
	}

	switch (m->state) {
	case HS_READ1:
		on_read1(m, ev, act);
		break;
	case HS_WRITE2:
		on_write2(m, ev, act);
		break;
	case HS_WAIT3:
		on_wait3(m, ev, act);
		break;
	case HS_READ4:
		on_read4(m, ev, act);
		break;
	case HS_WRITE5:
		on_write5(m, ev, act);
		break;
	case HS_CONNECTED:
		on_connected(m, ev, act);
		break;
	case HS_ERROR:
		on_error(m, ev, act);
		break;
	case HS_INIT:
		break;
	}
}

const char *hs_state_name(enum hs_state s)
{
	static const char *const names[HS_NSTATES] = {
		[HS_INIT] = "init",
		[HS_READ1] = "read1",
		[HS_WRITE2] = "write2",
		[HS_WAIT3] = "wait3",
		[HS_READ4] = "read4",
		[HS_WRITE5] = "write5",
		[HS_CONNECTED] = "connected",
		[HS_ERROR] = "error",
	};

	return (unsigned)s < HS_NSTATES ? names[s] : "?";
}

const char *hs_event_name(enum hs_event_type t)
{
	static const char *const names[HS_NEVENTS] = {
		[HS_EV_START] = "start",
		[HS_EV_READ_OK] = "read-ok",
		[HS_EV_READ_FAIL] = "read-fail",
		[HS_EV_WRITE_OK] = "write-ok",
		[HS_EV_WRITE_FAIL] = "write-fail",
		[HS_EV_MAILBOX] = "mailbox",
		[HS_EV_TIMEOUT] = "timeout",
		[HS_EV_BACKOFF_DONE] = "backoff-done",
		[HS_EV_PEER_LOST] = "peer-lost",
	};

	return (unsigned)t < HS_NEVENTS ? names[t] : "?";
}

const char *hs_error_name(enum hs_error e)
{
	static const char *const names[] = {
		[HS_ERR_NONE] = "none",
		[HS_ERR_WRITE_FAILED] = "write-failed",
		[HS_ERR_READ_FAILED] = "read-failed",
		[HS_ERR_PEER_RESTARTED] = "peer-restarted",
		[HS_ERR_PEER_SILENT] = "peer-silent",
		[HS_ERR_PEER_LOST] = "peer-lost",
	};

	return (unsigned)e < sizeof(names) / sizeof(names[0]) ? names[e] : "?";
}
