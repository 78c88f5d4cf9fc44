/* exit: the process exit codes of ccm-early and its verbs, one table.
 * `ccm-early connect --help` prints them and the README documents them;
 * boot scripts (dracut/95ccm) act on them, so a code never changes its
 * meaning. */
#ifndef CCM_EXIT_H
#define CCM_EXIT_H

enum ccm_exit {
	CCM_EXIT_OK = 0,          /* connected (and, without --once, ended cleanly) */
	CCM_EXIT_FAILURE = 1,     /* anything else */
	CCM_EXIT_USAGE = 2,       /* usage or configuration error */
	CCM_EXIT_TIMEOUT = 3,     /* timed out waiting for the partner */
	CCM_EXIT_NO_VERSION = 4,  /* no common protocol version */
	CCM_EXIT_AUTH = 5,        /* authentication failed */
	CCM_EXIT_STALE = 6,       /* status: the handoff is stale (its writer is
	                             gone, or is not the keeper, or does not answer) */
	CCM_SESSION_RESTART = -1, /* not an exit code: `stop --restart` asks the
	                             caller to run a fresh session */
};

#endif
