/* tp: finding a transport backend by name: the ones a configuration may
 * name.  The simulator's in-memory transport (tp_mem_ops) is not among them:
 * the simulator hands it to the session itself (session_opts.tp), so the
 * product binary does not carry it. */
#include "tp/transport.h"

#include <string.h>

const struct tp_ops *tp_lookup(const char *name)
{
	static const struct tp_ops *const backends[] = {
		&tp_tcp_ops,
		&tp_rdma_ops,
	};

	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}
