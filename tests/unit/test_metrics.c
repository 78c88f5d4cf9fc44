/* test_metrics: the status as Prometheus text -- every family once with its
 * HELP and TYPE, the values from the struct, label values escaped, a full
 * buffer refused -- and an older state file (without the newer link keys)
 * still read.  (promtool and node_exporter read the real keeper's output in
 * tests/twonode/test_keeper.sh.) */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "state/metrics.h"

static char buf[METRICS_TEXT_MAX];

static void sample(struct handoff *h)
{
	memset(h, 0, sizeof(*h));
	h->state = HANDOFF_CONNECTED;
	h->node = 1;
	h->partner_node = 2;
	strcpy(h->transport, "tcp");
	strcpy(h->cluster, "pair-1");
	h->updated = 1700000000;
	h->partner_sessions = 1;
	h->partner_losses = 3;
	h->partner_resumes = 2;
	h->partner_epoch_changes = 1;
	h->failovers = 4;
	h->nclients = 2;
	strcpy(h->clients[0].name, "fmon");
	h->clients[0].status = MATCH_OK;
	h->clients[0].nports = 1;
	h->clients[0].attached = 1;
	h->clients[0].queued = 5;
	h->clients[0].in_flight = 64;
	h->clients[0].given_up = 7;
	strcpy(h->clients[1].name, "nvmirror");
	h->clients[1].status = MATCH_REMOTE_ONLY;
	strcpy(h->link_policy, "balance");
	h->nlinks = 2;
	h->links[0] = (struct handoff_link){ .state = LINK_UP, .ports = 1, .ops = 10, .bytes = 640,
					     .msgs = 3, .downs = 1, .reissued = 2,
					     .changed = 1699999990, .rtt_last_ms = 2, .rtt_max_ms = 1500,
					     .rtt_sum_ms = 12345, .rtt_count = 99 };
	h->links[1] = (struct handoff_link){ .state = LINK_DAMPED };
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_families(void)
{
	struct handoff h;
	int n;

	sample(&h);
	n = metrics_format(&h, "default", buf, sizeof(buf));
	CHECK(n > 0 && (size_t)n == strlen(buf), "formatted (%d bytes)", n);
	CHECK(count(buf, "# TYPE ") == count(buf, "# HELP "), "a HELP for every TYPE");
	CHECK(count(buf, "# TYPE ccm_link_up gauge\n") == 1 &&
	      count(buf, "# TYPE ccm_link_heartbeat_rtt_seconds summary\n") == 1,
	      "each family once, whatever the number of links");
	CHECK(strstr(buf, "ccm_state{instance=\"default\",state=\"connected\"} 1\n") &&
	      strstr(buf, "ccm_state{instance=\"default\",state=\"unreachable\"} 0\n"),
	      "the state, one-hot");
	CHECK(strstr(buf, "ccm_partner_up{instance=\"default\"} 1\n") &&
	      strstr(buf, "ccm_partner_losses_total{instance=\"default\"} 3\n") &&
	      strstr(buf, "ccm_partner_resumes_total{instance=\"default\"} 2\n") &&
	      strstr(buf, "ccm_partner_epoch_changes_total{instance=\"default\"} 1\n") &&
	      strstr(buf, "ccm_link_failovers_total{instance=\"default\"} 4\n"),
	      "the partner's counters");
	CHECK(strstr(buf, "ccm_link_up{instance=\"default\",link=\"0\"} 1\n") &&
	      strstr(buf, "ccm_link_up{instance=\"default\",link=\"1\"} 0\n") &&
	      strstr(buf, "ccm_link_state{instance=\"default\",link=\"1\",state=\"damped\"} 1\n"),
	      "links up or not, and their state");
	CHECK(strstr(buf, "ccm_link_bytes_total{instance=\"default\",link=\"0\"} 640\n") &&
	      strstr(buf, "ccm_link_reissued_operations_total{instance=\"default\",link=\"0\"} 2\n") &&
	      strstr(buf, "ccm_link_state_changed_timestamp_seconds{instance=\"default\",link=\"0\"} "
			  "1699999990\n"),
	      "link counters");
	CHECK(strstr(buf, "ccm_link_heartbeat_rtt_seconds_sum{instance=\"default\",link=\"0\"} 12.345\n") &&
	      strstr(buf, "ccm_link_heartbeat_rtt_seconds_count{instance=\"default\",link=\"0\"} 99\n") &&
	      strstr(buf, "ccm_link_heartbeat_rtt_max_seconds{instance=\"default\",link=\"0\"} 1.500\n") &&
	      strstr(buf, "ccm_link_heartbeat_rtt_last_seconds{instance=\"default\",link=\"0\"} 0.002\n"),
	      "round trips in seconds, from milliseconds");
	CHECK(strstr(buf, "ccm_client_attached{instance=\"default\",client=\"fmon\"} 1\n") &&
	      strstr(buf, "ccm_client_queued_messages{instance=\"default\",client=\"fmon\"} 5\n") &&
	      strstr(buf, "ccm_client_in_flight_messages{instance=\"default\",client=\"fmon\"} 64\n") &&
	      strstr(buf, "ccm_client_messages_given_up_total{instance=\"default\",client=\"fmon\"} 7\n") &&
	      strstr(buf, "ccm_client_shared{instance=\"default\",client=\"nvmirror\"} 0\n"),
	      "clients");
	CHECK(!strstr(buf, "link=\"2\""), "no series for links that do not exist");
}

static void test_escaping_and_room(void)
{
	struct handoff h;
	int n;

	sample(&h);
	n = metrics_format(&h, "a\"b\\c\nd", buf, sizeof(buf));
	CHECK(n > 0 && strstr(buf, "ccm_partner_up{instance=\"a\\\"b\\\\c\\nd\"} 1\n"),
	      "label values escaped as the format says");
	n = metrics_format(&h, "default", buf, 100);
	CHECK(n == -ENOSPC, "too small a buffer: -ENOSPC (%d)", n);
}

static void test_older_state_file(void)
{
	static char text[HANDOFF_TEXT_MAX], older[HANDOFF_TEXT_MAX];
	struct handoff h, back;
	struct errbuf e;
	size_t k = 0;
	int n;

	sample(&h);
	n = handoff_format_shell(&h, text, sizeof(text));
	CHECK(n > 0, "state formatted");
	/* A keeper of the previous version wrote no CHANGED or RTT_ keys. */
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (strstr(line, "_CHANGED=") || strstr(line, "_RTT_"))
			continue;
		k += (size_t)snprintf(older + k, sizeof(older) - k, "%s\n", line);
	}
	CHECK(!strstr(older, "RTT") && handoff_parse(older, k, &back, &e) == 0,
	      "an older state file still reads");
	CHECK(back.links[0].ops == 10 && back.links[0].rtt_count == 0, "with what it has");
}

int main(void)
{
	test_families();
	test_escaping_and_room();
	test_older_state_file();
	return check_done();
}
