/* ccm-early: the cluster connection manager's command line.
 *
 *   ccm-early connect ...   handshake with the partner, exchange, hand off
 *   ccm-early status ...    show the handoff state
 *   ccm-early devices       list RDMA devices
 *
 * Each subcommand parses its own options with getopt_long and has its own --help.
 * Exit codes are enum ccm_exit (base/exit.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "base/exit.h"
#include "base/instance.h"
#include "base/name.h"
#include "conf/config.h"
#include "state/handoff.h"
#include "base/log.h"
#include "daemon/real_root.h"
#include "daemon/session.h"
#include "cli/commands.h"

#define CCM_VERSION_STRING "0.1.0"

/* The numbers come from enum ccm_exit, so the help cannot drift from it. */
static const struct {
	enum ccm_exit code;
	const char *what;
} exit_codes[] = {
	{ CCM_EXIT_OK, "connected (without --once: connected, then ended cleanly by SIGTERM);\n"
		       "     also a clean stop by SIGTERM before the partner was found" },
	{ CCM_EXIT_FAILURE, "any other failure" },
	{ CCM_EXIT_USAGE, "usage or configuration error" },
	{ CCM_EXIT_TIMEOUT, "timed out waiting for the partner (--timeout)" },
	{ CCM_EXIT_NO_VERSION, "no protocol version in common with the partner" },
	{ CCM_EXIT_AUTH, "authentication failed (pre-shared key missing or different)" },
};

static void print_exit_codes(FILE *out)
{
	fprintf(out, "Exit codes:\n");
	for (size_t i = 0; i < sizeof(exit_codes) / sizeof(exit_codes[0]); i++)
		fprintf(out, "  %d  %s\n", (int)exit_codes[i].code, exit_codes[i].what);
}

static void usage_main(FILE *out)
{
	fprintf(out,
		"Usage: ccm-early COMMAND [OPTIONS]\n"
		"\n"
		"Early-boot cluster connection manager for a two-node HA pair.\n"
		"\n"
		"Commands:\n"
		"  connect   handshake with the partner, exchange client descriptors,\n"
		"            create the ports and write the handoff\n"
		"  status    show the handoff state written by connect\n"
		"  check     one line on the pair's health; exit 0 connected, 1 degraded,\n"
		"            2 not connected, 3 no keeper\n"
		"  metrics   print the keeper's metrics (Prometheus text format)\n"
		"  events    follow the keeper's changes, one line each\n"
		"  exec      run a service with a client's ports (LISTEN_FDS)\n"
		"  stop      stop the keeper (and with --restart, handshake again)\n"
		"  reload-keys  read the key files again (key rotation)\n"
		"  dump      print what the partner mirrored into a client's window\n"
		"  keygen    write a new pre-shared key file and print its id\n"
		"  devices   list RDMA devices\n"
		"  version   print the version\n"
		"\n"
		"Run 'ccm-early COMMAND --help' for a command's options.\n");
}

static void usage_connect(FILE *out)
{
	fprintf(out,
		"Usage: ccm-early connect --node-id N --listen ADDR[:PORT] --partner ADDR[:PORT]\n"
		"                         [OPTIONS]\n"
		"       ccm-early connect --node-id N --link LOCAL=PARTNER [--link ...] [OPTIONS]\n"
		"\n"
		"Find the partner, run the handshake on its status block, exchange version,\n"
		"identity and client descriptors, create each shared client's ports and write\n"
		"the handoff (STATE-DIR/state and state.json).  Then detach and go on as the\n"
		"keeper: serve the partner and the local clients (STATE-DIR/ccm.sock) until\n"
		"SIGTERM or 'ccm-early stop'.  The command itself exits at the handoff: %d when\n"
		"connected, %d when --timeout passed first (the keeper goes on looking).\n"
		"With --once, exit at the handoff instead; with --foreground, do not detach.\n"
		"\n"
		"Options (but --instance, --config, --once, --foreground, -v: also config keys):\n"
		"  --node-id N            this node's id, 1..4294967294\n"
		"  --listen ADDR[:PORT]   where this node listens (default port %d)\n"
		"  --partner ADDR[:PORT]  where the partner listens\n"
		"  --transport tcp|rdma   interconnect (default tcp)\n"
		"  --device NAME          RDMA device (default: by the listen address)\n"
		"  --instance NAME        be instance NAME (default $%s): /etc/ccm/NAME.conf,\n"
		"                         NAME.clients.d, /run/ccm/NAME (command line only)\n"
		"  --clients DIR          client descriptors (default /etc/ccm/clients.d)\n"
		"  --state-dir DIR        handoff directory (default /run/ccm)\n"
		"  --psk-file FILE        pre-shared key; both sides must hold the same\n"
		"  --psk-accept-file FILE a second key the partner may prove with, while\n"
		"                         keys are rotated (absent file: none); both are\n"
		"                         read again by 'ccm-early reload-keys' or SIGHUP\n"
		"  --cluster NAME         cluster name; both sides must agree (default ccm)\n"
		"  --timeout SEC          give up after SEC seconds (default 0: never)\n"
		"  --proto-versions MIN-MAX  versions to offer (testing)\n"
		"  --config FILE          config file (default /etc/ccm/ccm.conf if it exists);\n"
		"                         options on the command line override it\n"
		"  --heartbeat-ms MS      connected: heartbeat interval (default 100)\n"
		"  --heartbeat-misses N   the partner is lost after N silent intervals (default 5)\n"
		"  --link LOCAL=PARTNER[,device=DEV][,priority=N]\n"
		"                         one interconnect (repeat for up to %d; link i pairs\n"
		"                         with the partner's link i); replaces --listen,\n"
		"                         --partner and --device\n"
		"  --link-policy balance|standby  ports spread over the up links by outstanding\n"
		"                         bytes (default), or all on the highest priority one\n"
		"  --link-heartbeat-ms MS each link proves itself this often (default 10)\n"
		"  --link-misses N        a link is down after N late heartbeats (default 3)\n"
		"  --link-damp-ms MS      a link that failed carries ports again only after\n"
		"                         staying up this long (default 1000)\n"
		"  --msg-hold-ms MS       a partner's message for a client of ours that is not\n"
		"                         attached waits this long, then fails with ETIMEDOUT\n"
		"                         (default 30000; 0: until the session ends)\n"
		"  --metrics-dir DIR      keep DIR/ccm-early.prom up to date: the metrics, in\n"
		"                         Prometheus' text format (node_exporter's textfile\n"
		"                         collector); always also STATE-DIR/metrics\n"
		"  --partner-node N       the partner's node id: refuse every other node\n"
		"                         (default: once connected, only the partner)\n"
		"  --once                 exit once connected and handed off\n"
		"  --foreground           do not detach at the handoff: stay attached to a\n"
		"                         supervisor (systemd Type=notify gets READY=1)\n"
		"  -v, --verbose          log every state transition (-vv: every operation)\n"
		"  -h, --help             this help\n"
		"\n",
		CCM_EXIT_OK, CCM_EXIT_TIMEOUT, CCM_DEFAULT_PORT, INSTANCE_ENV, CCM_LINKS_MAX);
	print_exit_codes(out);
}

static void usage_devices(FILE *out)
{
	fprintf(out, "Usage: ccm-early devices\n\nList the RDMA devices this machine has.\n");
}

/* --- connect ------------------------------------------------------------------ */

/* The keeper detaches from whoever started it, but only once the handoff
 * is there: fork at once -- before any RDMA memory is registered, which a
 * later fork would tear away from its pages -- and let the parent wait on
 * a pipe for the child's verdict (connected or timed out), exiting with it
 * so that a boot script can go on.  Returns the parent's exit code, or -1
 * in the child (with *handoff_fd set). */
static int detach(int *handoff_fd)
{
	int p[2], status;
	uint8_t code;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		fprintf(stderr, "ccm-early connect: pipe: %s\n", strerror(errno));
		return CCM_EXIT_FAILURE;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "ccm-early connect: fork: %s\n", strerror(errno));
		return CCM_EXIT_FAILURE;
	}
	if (pid == 0) {
		close(p[0]);
		/* Out of the caller's session, so that its terminal closing
		 * does not take the keeper along.  A fresh child is never a
		 * group leader, so this fails only on a broken system: say so
		 * and go on, the keeper works either way. */
		if (setsid() < 0)
			fprintf(stderr, "ccm-early connect: setsid: %s\n", strerror(errno));
		*handoff_fd = p[1];
		return -1;
	}
	close(p[1]);
	do
		n = read(p[0], &code, 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == 1)
		return code;  /* handed off: the keeper goes on without us */
	/* No byte: the child ended before the handoff, and its status is ours. */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : CCM_EXIT_FAILURE;
}

struct cli_setting {
	const char *key;
	const char *value;
};

static int cmd_connect(int argc, char **argv, char *argv0)
{
	static const struct option opts[] = {
		{ "node-id", required_argument, NULL, 0 },
		{ "listen", required_argument, NULL, 0 },
		{ "partner", required_argument, NULL, 0 },
		{ "transport", required_argument, NULL, 0 },
		{ "device", required_argument, NULL, 0 },
		{ "clients", required_argument, NULL, 0 },
		{ "state-dir", required_argument, NULL, 0 },
		{ "psk-file", required_argument, NULL, 0 },
		{ "psk-accept-file", required_argument, NULL, 0 },
		{ "cluster", required_argument, NULL, 0 },
		{ "timeout", required_argument, NULL, 0 },
		{ "proto-versions", required_argument, NULL, 0 },
		{ "heartbeat-ms", required_argument, NULL, 0 },
		{ "heartbeat-misses", required_argument, NULL, 0 },
		{ "link", required_argument, NULL, 0 },
		{ "link-policy", required_argument, NULL, 0 },
		{ "link-heartbeat-ms", required_argument, NULL, 0 },
		{ "link-misses", required_argument, NULL, 0 },
		{ "link-damp-ms", required_argument, NULL, 0 },
		{ "partner-node", required_argument, NULL, 0 },
		{ "msg-hold-ms", required_argument, NULL, 0 },
		{ "metrics-dir", required_argument, NULL, 0 },
		{ "foreground", no_argument, NULL, 'f' },
		{ "config", required_argument, NULL, 'c' },
		{ "instance", required_argument, NULL, 'i' },
		{ "once", no_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_setting settings[32];
	int nsettings = 0, verbose = 0, idx, c, r;
	const char *config_path = NULL, *instance = instance_from_env();
	char default_config[INSTANCE_PATH_MAX];
	struct session_opts sopts = { 0 };
	struct journal journal = { .fd = -1 };
	struct real_root real_root;
	struct ccm_config cfg;
	struct errbuf e;
	struct log log;

	while ((c = getopt_long(argc, argv, "vh", opts, &idx)) != -1) {
		switch (c) {
		case 0:
			if (nsettings == (int)(sizeof(settings) / sizeof(settings[0]))) {
				fprintf(stderr, "ccm-early connect: too many options\n");
				return CCM_EXIT_USAGE;
			}
			settings[nsettings++] = (struct cli_setting){ opts[idx].name, optarg };
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'i':
			instance = optarg;
			break;
		case 'o':
			sopts.once = true;
			break;
		case 'f':
			sopts.foreground = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage_connect(stdout);
			return CCM_EXIT_OK;
		default:
			usage_connect(stderr);
			return CCM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ccm-early connect: unexpected argument '%s'\n", argv[optind]);
		usage_connect(stderr);
		return CCM_EXIT_USAGE;
	}

	if (instance && !instance_name_valid(instance)) {
		fprintf(stderr, "ccm-early connect: instance '%s': not a name (%s)\n", instance,
			INSTANCE_NAME_RULE);
		return CCM_EXIT_USAGE;
	}
	if (instance_config_path(instance, default_config, sizeof(default_config)) < 0) {
		fprintf(stderr, "ccm-early connect: the config directory's path is too long\n");
		return CCM_EXIT_USAGE;
	}
	config_defaults(&cfg, instance);
	/* A named instance has a config file of its own, or it would be the
	 * unnamed one's twin on another socket: its file must be there. */
	if (config_path || access(default_config, F_OK) == 0 || (instance && instance[0])) {
		r = config_load_file(&cfg, config_path ? config_path : default_config, &e);
		if (r < 0) {
			fprintf(stderr, "ccm-early connect: %s\n", e.msg);
			return CCM_EXIT_USAGE;
		}
	}
	/* The command line overrides the file; its links replace the file's. */
	for (int i = 0; i < nsettings; i++)
		if (!strcmp(settings[i].key, "link")) {
			config_clear_links(&cfg);
			break;
		}
	for (int i = 0; i < nsettings; i++) {
		if (config_set(&cfg, settings[i].key, settings[i].value, &e) < 0) {
			fprintf(stderr, "ccm-early connect: --%s\n", e.msg);  /* "key: why" */
			return CCM_EXIT_USAGE;
		}
	}
	if (config_check(&cfg, &e) < 0) {
		fprintf(stderr, "ccm-early connect: %s\n", e.msg);
		usage_connect(stderr);
		return CCM_EXIT_USAGE;
	}
	cfg.verbose = verbose;
	log = (struct log){ .verbose = verbose, .node = cfg.node_id, .instance = cfg.instance,
			    .journal = &journal };
	sopts.argv0 = argv0;
	sopts.handoff_fd = -1;
	real_root_open(&real_root);
	sopts.real_root = &real_root;
	/* Under a unit whose stderr is the journal, write to it natively; a
	 * keeper from the initramfs does once it is in the real root (loop.c). */
	if (real_root.proc_fd < 0 && journal_is_stderr())
		(void)journal_open(&journal);  /* else stderr, as before */
	if (!sopts.once && !sopts.foreground) {
		r = detach(&sopts.handoff_fd);
		if (r >= 0) {
			real_root_close(&real_root);
			journal_close(&journal);
			return r;  /* the parent: the keeper's exit code at the handoff */
		}
	}
	/* `stop --restart` ends a session and asks for a fresh one, with a
	 * new epoch; the keeper's process lives on (and, after switch_root,
	 * the new session opens its devices and files in the real root). */
	while ((r = session_run(&cfg, &sopts, &log)) == CCM_SESSION_RESTART)
		sopts.handoff_fd = -1;
	real_root_close(&real_root);
	journal_close(&journal);
	return r;
}

/* --- devices ------------------------------------------------------------------ */

static int cmd_devices(int argc, char **argv)
{
	struct ibv_device **list;
	int n = 0;

	if (argc > 1) {
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
			usage_devices(stdout);
			return CCM_EXIT_OK;
		}
		usage_devices(stderr);
		return CCM_EXIT_USAGE;
	}
	list = ibv_get_device_list(&n);
	if (!list) {
		/* A kernel without RDMA support has no devices; that is an
		 * answer, not a failure. */
		if (errno == ENOSYS || errno == ENODEV || errno == ENOENT) {
			printf("0 devices (this kernel has no RDMA support)\n");
			return CCM_EXIT_OK;
		}
		fprintf(stderr, "ccm-early devices: %s\n", strerror(errno));
		return CCM_EXIT_FAILURE;
	}
	printf("%d device%s\n", n, n == 1 ? "" : "s");
	for (int i = 0; i < n; i++)
		printf("  %-16s node guid %016llx\n", ibv_get_device_name(list[i]),
		       (unsigned long long)be64toh(ibv_get_device_guid(list[i])));
	ibv_free_device_list(list);
	return CCM_EXIT_OK;
}

int main(int argc, char **argv)
{
	char *argv0 = argv[0];
	const char *cmd;

	if (argc < 2) {
		usage_main(stderr);
		return CCM_EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		usage_main(stdout);
		return CCM_EXIT_OK;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("ccm-early %s (protocol versions %d-%d)\n", CCM_VERSION_STRING,
		       CCM_PROTO_MIN, CCM_PROTO_MAX);
		return CCM_EXIT_OK;
	}
	/* Each subcommand sees its own argv, with itself as argv[0], named the
	 * way getopt's messages should name it. */
	argc--;
	argv++;
	/* The labels are writable arrays: they become argv[0]. */
	static struct {
		const char *name;
		int (*run)(int, char **);
		char label[24];
	} commands[] = {
		{ "status", cmd_status, "ccm-early status" },
		{ "check", cmd_check, "ccm-early check" },
		{ "metrics", cmd_metrics, "ccm-early metrics" },
		{ "events", cmd_events, "ccm-early events" },
		{ "devices", cmd_devices, "ccm-early devices" },
		{ "exec", cmd_exec, "ccm-early exec" },
		{ "stop", cmd_stop, "ccm-early stop" },
		{ "reload-keys", cmd_reload_keys, "ccm-early reload-keys" },
		{ "dump", cmd_dump, "ccm-early dump" },
		{ "keygen", cmd_keygen, "ccm-early keygen" },
	};
	static char connect_name[] = "ccm-early connect";

	if (strcmp(cmd, "connect") == 0) {
		argv[0] = connect_name;
		return cmd_connect(argc, argv, argv0);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(cmd, commands[i].name) == 0) {
			argv[0] = commands[i].label;
			return commands[i].run(argc, argv);
		}
	}
	fprintf(stderr, "ccm-early: unknown command '%s'\n", cmd);
	usage_main(stderr);
	return CCM_EXIT_USAGE;
}
