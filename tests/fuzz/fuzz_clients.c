/* fuzz_clients: one client descriptor.  What parses must write back as
 * `key = value` text that parses to the same descriptor, and must match
 * itself through the wire form. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/client_desc.h"

/* clients_match with our side as a set, in its wire form as the exchange
 * sends it. */
static int match(const struct client_set *local, const struct wire_clients *remote,
		 struct client_match *out, int max)
{
	static struct wire_clients ours;

	clients_to_wire(local, &ours);
	return clients_match(&ours, remote, out, max);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct client_set set;
	static struct wire_clients w;
	struct client_match m[2];
	struct client_desc d, d2;
	struct errbuf e;
	char text[128];
	int n;

	if (clients_parse("fuzz_1.conf", (const char *)data, size, &d, &e) < 0)
		return 0;
	if (strcmp(d.name, "fuzz_1") || d.nports < 1 || d.nports > CCM_PORTS_MAX ||
	    d.port_size < CCM_PORT_SIZE_MIN || d.port_size > CCM_PORT_SIZE_MAX ||
	    d.port_size % 4096 || d.uid == UINT32_MAX)
		abort();
	n = snprintf(text, sizeof(text), "ports = %u\nport-size = %u\nuid = %u\n",
		     (unsigned)d.nports, (unsigned)d.port_size, (unsigned)d.uid);
	if (clients_parse("fuzz_1.conf", text, (size_t)n, &d2, &e) < 0 ||
	    memcmp(&d, &d2, sizeof(d)))
		abort();
	set.count = 1;
	set.c[0] = d;
	clients_to_wire(&set, &w);
	if (match(&set, &w, m, 2) != 1 || m[0].status != MATCH_OK)
		abort();
	return 0;
}
