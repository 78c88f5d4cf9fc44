/* libccm_collide: a libccm user whose own functions share names with
 * libccm's internals.  The Makefile links it against build/libccm.a and
 * runs it each time it builds the archive: a link error (multiple
 * definition) or a call of libccm landing in these functions means the
 * archive exports more than ccm.h's API. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "client/ccm.h"

/* Names libccm uses inside, with signatures of the user's choosing. */
int errbuf_set(void);
int fdmsg_send(void);
int listenfds_take(void);
int client_connect(void);
int client_name_valid(void);
int num_parse_u32(void);

static int called;

int errbuf_set(void) { return ++called; }
int fdmsg_send(void) { return ++called; }
int listenfds_take(void) { return ++called; }
int client_connect(void) { return ++called; }
int client_name_valid(void) { return ++called; }
int num_parse_u32(void) { return ++called; }

int main(void)
{
	struct ccm_client *c = NULL;
	/* No keeper there: libccm's own client_connect must say so. */
	int r = ccm_attach("collide", "/nonexistent-ccm-state-dir", &c);

	if (r != -ECONNREFUSED || c || called) {
		fprintf(stderr, "libccm_collide: ccm_attach gave %d (%s), user functions called "
			"%d times\n", r, ccm_strerror(r), called);
		return 1;
	}
	return errbuf_set() + fdmsg_send() + listenfds_take() + client_connect() +
	       client_name_valid() + num_parse_u32() == 21 ? 0 : 1;
}
