/* commands: the ccm-early subcommands that talk to a running keeper.  Each takes
 * its own argv (argv[0] = "ccm-early VERB"), parses it with getopt_long,
 * has --help, and returns the process exit code (enum ccm_exit, base/exit.h). */
#ifndef CCM_VERBS_H
#define CCM_VERBS_H

/* ccm-early status [--state-dir DIR] [--json]
 * Print the running keeper's state (asked over its socket), or else the
 * handoff file, shown as stale when the process it names is gone, is
 * another process, or does not answer. */
int cmd_status(int argc, char **argv);

/* ccm-early metrics [--state-dir DIR]
 * Print the keeper's metrics (Prometheus text, state/metrics.h), exiting
 * as status does when their writer is gone. */
int cmd_metrics(int argc, char **argv);

/* ccm-early check [--state-dir DIR]
 * One line on the pair's health and an exit code for monitoring and for a
 * corosync-qdevice heuristics command (enum check_exit in cmd_status.c):
 * connected on every link, degraded, the partner not connected, no
 * keeper. */
int cmd_check(int argc, char **argv);

/* ccm-early events [--state-dir DIR] [--now] [--json]
 * Follow the keeper's changes, one line each (cmd_events.c has the format),
 * until it goes. */
int cmd_events(int argc, char **argv);

/* ccm-early exec [--state-dir DIR] CLIENT -- COMMAND [ARGS...]
 * Fetch CLIENT's fds from the keeper and exec COMMAND with them at fd 3
 * onward, LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES set as socket activation
 * does ("ccm.control", "ccm.window.N", "ccm.event.N"). */
int cmd_exec(int argc, char **argv);

/* ccm-early stop [--state-dir DIR] [--restart] [--grace MS]
 * Ask the keeper to tell its clients, wait for them, tell the partner and
 * release everything; with --restart, handshake again. */
int cmd_stop(int argc, char **argv);

/* ccm-early reload-keys [--state-dir DIR]
 * Ask the keeper to read its key files again, as SIGHUP does (root only),
 * and print the ids it holds now. */
int cmd_reload_keys(int argc, char **argv);

/* ccm-early dump [--state-dir DIR] CLIENT [--port N]
 * Print what the partner's CLIENT mirrored into our window (the nvmirror
 * record format, mirror.h), checking every record's sequence and checksum. */
int cmd_dump(int argc, char **argv);

/* ccm-early keygen [--force] FILE
 * Write a new pre-shared key to FILE (mode 0600, never over an existing
 * file unless forced) and print its id (auth_key_id). */
int cmd_keygen(int argc, char **argv);

#endif
