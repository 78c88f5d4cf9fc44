/* clients: the local clients' descriptors (matching them against the
 * partner's is the exchange's: proto/client_match.h).
 *
 * A clients directory (default /etc/ccm/clients.d) holds one file per local
 * client, NAME.conf, where NAME is the client's name ([a-z][a-z0-9_]{0,30}).
 * The contents use the configuration file's `key = value` syntax (config.h):
 *
 *   ports     = 4
 *   port-size = 1M
 *   uid       = 990
 *
 *   ports      number of ports, 1..64 (required)
 *   port-size  bytes per port: a multiple of 4096 in 4096..64 MiB, with an
 *              optional suffix K (KiB) or M (MiB) (required)
 *   uid        numeric user allowed to fetch the ports later (optional;
 *              default 0 = root only)
 *
 * Files not ending in ".conf" and hidden files are ignored (editor backups,
 * package manager leftovers).  A descriptor that does not parse is left out
 * and recorded, never fatal to the others; more than CCM_CLIENTS_MAX valid
 * descriptors, or more than CCM_PORTS_TOTAL ports in all, is an error. */
#ifndef CCM_CLIENTS_H
#define CCM_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#include "base/errbuf.h"
#include "base/limits.h"
#include "proto/client_match.h"
#include "proto/wire.h"

#define CLIENTS_FILE_MAX (CCM_NAME_MAX + 16) /* a recorded bad file name */
#define CLIENTS_WHY_MAX  191                 /* its error message */

struct client_desc {
	char name[CCM_NAME_MAX + 1];
	uint16_t nports;
	uint32_t port_size;
	uint32_t uid;
};

/* A descriptor file that was refused.  file is the directory entry's name,
 * truncated, with every byte outside [A-Za-z0-9._-] replaced by '_', so it
 * is safe to log and to put in the handoff file. */
struct client_bad {
	char file[CLIENTS_FILE_MAX];
	char why[CLIENTS_WHY_MAX + 1];
};

struct client_set {
	int count;                          /* sorted by name */
	struct client_desc c[CCM_CLIENTS_MAX];
	int nbad;                           /* sorted by file; at most
					       CCM_CLIENTS_MAX are recorded,
					       further bad files are only
					       left out */
	struct client_bad bad[CCM_CLIENTS_MAX];
};

/* Load every NAME.conf in dir.  A missing directory means no clients (0).
 * Errors: the directory cannot be read, too many clients or ports. */
int clients_load_dir(const char *dir, struct client_set *out, struct errbuf *e);

/* Parse one descriptor; fname is the file's name (NAME.conf, no directory),
 * which gives the client's name and the "FILE:LINE: " of messages. */
int clients_parse(const char *fname, const char *text, size_t len,
		  struct client_desc *out, struct errbuf *e);

/* Our clients as the exchange sends them (CLIENTS). */
void clients_to_wire(const struct client_set *s, struct wire_clients *w);

#endif
