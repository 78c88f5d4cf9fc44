/* instance: where each ccm-early instance of a node keeps its files.
 *
 * A node runs one manager per partner: a storage controller paired with
 * its partner controller and also serving an application server, or an
 * application server connected to both controllers of a pair.  Each
 * manager is an instance with its own configuration, clients, state
 * directory, keeper and control socket, and nothing of one is shared with
 * another.  The unnamed instance keeps the paths ccm-early always had;
 * instance NAME (the client name rule, base/name.h) lives beside it:
 *
 *                     unnamed                  NAME
 *   configuration     CONF/ccm.conf            CONF/NAME.conf
 *   clients           CONF/clients.d           CONF/NAME.clients.d
 *   state directory   RUN                      RUN/NAME
 *
 * CONF is /etc/ccm and RUN is /run/ccm, or $CCM_CONF_DIR and $CCM_RUN_DIR
 * when set (a chroot, a test playing several nodes on one machine).  A
 * command not told which instance with --instance or --state-dir acts on
 * $CCM_INSTANCE's, or else on the unnamed one. */
#ifndef CCM_INSTANCE_H
#define CCM_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/limits.h"
#include "base/name.h"

#define CCM_CONF_DIR_DEFAULT "/etc/ccm"
#define INSTANCE_ENV "CCM_INSTANCE"

/* What a path of an instance can hold: as long as a config path. */
#define INSTANCE_PATH_MAX 4096

/* Named instances one listing shows at most. */
#define INSTANCES_MAX 64

const char *instance_run_dir(void);
const char *instance_conf_dir(void);

/* $CCM_INSTANCE, or NULL when it is unset or empty. */
const char *instance_from_env(void);

/* The client name rule, less the names the unnamed instance's own files
 * take (ccm, state, metrics). */
#define INSTANCE_NAME_RULE CLIENT_NAME_RULE ", not ccm, state or metrics"
bool instance_name_valid(const char *name);

/* The paths of instance name (NULL or "": the unnamed one) into buf:
 * 0, or -EINVAL for a name that breaks the rule, -ENAMETOOLONG. */
int instance_state_dir(const char *name, char *buf, size_t cap);
int instance_config_path(const char *name, char *buf, size_t cap);
int instance_clients_dir(const char *name, char *buf, size_t cap);

/* The named instances that have a state directory under the run
 * directory (a directory with a valid name holding a handoff file or a
 * socket), sorted, at most max: their number, or -errno. */
int instance_list(char (*names)[CCM_NAME_MAX + 1], int max);

#endif
