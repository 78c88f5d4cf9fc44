#include "cli/keeper_request.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "base/limits.h"
#include "base/name.h"

#include "client/attach.h"
#include "client/ccm.h"
#include "client/ctl.h"
#include "client/fdmsg.h"

/* Wait for the keeper's one answer.  0 when it says done, else a message
 * in e and -errno. */
static int await_done(int sock, int timeout_ms, const char *what, struct errbuf *e)
{
	struct ctl_error err;
	struct ctl_done d;
	struct fdmsg m;
	int r = fdmsg_recv_within(sock, timeout_ms, &m, e);

	if (r == -ETIMEDOUT)
		return errbuf_prefix(e, r, "the keeper");
	if (r == 0 || r == -ECONNRESET)
		return errbuf_set(e, -ENOTCONN, "the keeper closed the connection without answering");
	if (r < 0)
		return errbuf_prefix(e, r, "the keeper's answer");
	fdmsg_close(&m);  /* no answer to these requests carries an fd */
	if (m.type == CTL_ERROR && m.len == sizeof(err)) {
		memcpy(&err, m.data, sizeof(err));
		err.msg[sizeof(err.msg) - 1] = '\0';
		return errbuf_set(e, err.status < 0 ? err.status : -EPROTO, "the keeper refused: %s",
				  err.msg[0] ? err.msg : ccm_strerror(err.status));
	}
	if (m.type != CTL_DONE || m.len != sizeof(d))
		return errbuf_set(e, -EPROTO, "unexpected answer (type %u, %u bytes)", m.type, m.len);
	memcpy(&d, m.data, sizeof(d));
	if (d.status < 0)
		return errbuf_set(e, d.status, "the keeper could not %s: %s", what,
				  strerror(-d.status));
	return 0;
}

int keeper_request(const char *state_dir, uint16_t type, const void *req, size_t len,
		   int timeout_ms, const char *what, struct errbuf *e)
{
	int sock, r;

	r = client_connect(state_dir, &sock, e);
	if (r < 0)
		return r;
	r = fdmsg_send(sock, type, req, len, -1);
	if (r < 0)
		errbuf_set(e, r, "sending the request: %s", strerror(-r));
	else
		r = await_done(sock, timeout_ms, what, e);
	close(sock);
	return r;
}

int keeper_dir_settle(const char *prog, const char *state_dir, const char *instance,
		      struct keeper_dir *d)
{
	bool from_env = !state_dir && !instance && instance_from_env();
	int r;

	if (state_dir && instance) {
		fprintf(stderr, "%s: give --state-dir or --instance, not both\n", prog);
		return -1;
	}
	if (from_env)
		instance = instance_from_env();
	d->chosen = state_dir || instance;
	if (instance && !instance_name_valid(instance)) {
		fprintf(stderr, "%s: instance '%s'%s: not a name (%s)\n", prog, instance,
			from_env ? " (from $" INSTANCE_ENV ")" : "", INSTANCE_NAME_RULE);
		return -1;
	}
	if (state_dir) {
		r = snprintf(d->path, sizeof(d->path), "%s", state_dir);
		r = r < 0 || (size_t)r >= sizeof(d->path) ? -ENAMETOOLONG : 0;
	} else {
		r = instance_state_dir(instance, d->path, sizeof(d->path));
	}
	if (r < 0) {
		fprintf(stderr, "%s: the state directory's path is too long\n", prog);
		return -1;
	}
	return 0;
}

int keeper_dir_args(int argc, char **argv, void (*usage)(FILE *), int usage_exit,
		    struct keeper_dir *d)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "instance", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *instance = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			dir = optarg;
			break;
		case 'i':
			instance = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return usage_exit;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return usage_exit;
	}
	return keeper_dir_settle(argv[0], dir, instance, d) < 0 ? usage_exit : -1;
}
