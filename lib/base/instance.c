/* instance: where each instance keeps its files.  See instance.h. */
#include "base/instance.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/name.h"

/* The handoff file and the control socket (state/handoff.h and client/ctl.h
 * name them for their layers; this one only needs to see that one is there). */
#define STATE_FILE_NAME "state"
#define SOCKET_FILE_NAME "ccm.sock"

static const char *env_or(const char *var, const char *fallback)
{
	const char *v = getenv(var);

	return v && v[0] ? v : fallback;
}

const char *instance_run_dir(void)
{
	return env_or("CCM_RUN_DIR", CCM_STATE_DIR_DEFAULT);
}

const char *instance_conf_dir(void)
{
	return env_or("CCM_CONF_DIR", CCM_CONF_DIR_DEFAULT);
}

const char *instance_from_env(void)
{
	return env_or(INSTANCE_ENV, NULL);
}

/* Names the unnamed instance's own files take where instance NAME's would
 * go: /etc/ccm/ccm.conf, and the handoff file and the metrics directory in
 * /run/ccm.  An instance so named would share the unnamed one's
 * configuration, or find a file where its directory belongs. */
static const char *const reserved[] = { "ccm", "state", "metrics" };

bool instance_name_valid(const char *name)
{
	if (!name || !client_name_valid(name, strlen(name)))
		return false;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (!strcmp(name, reserved[i]))
			return false;
	return true;
}

/* dir, then "/" name and suffix for a named instance, or "/" plain for
 * the unnamed one (NULL plain: dir itself). */
static int path_of(const char *name, const char *dir, const char *suffix, const char *plain,
		   char *buf, size_t cap)
{
	int n;

	if (name && name[0]) {
		if (!instance_name_valid(name))
			return -EINVAL;
		n = snprintf(buf, cap, "%s/%s%s", dir, name, suffix);
	} else if (plain) {
		n = snprintf(buf, cap, "%s/%s", dir, plain);
	} else {
		n = snprintf(buf, cap, "%s", dir);
	}
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int instance_state_dir(const char *name, char *buf, size_t cap)
{
	return path_of(name, instance_run_dir(), "", NULL, buf, cap);
}

int instance_config_path(const char *name, char *buf, size_t cap)
{
	return path_of(name, instance_conf_dir(), ".conf", "ccm.conf", buf, cap);
}

int instance_clients_dir(const char *name, char *buf, size_t cap)
{
	return path_of(name, instance_conf_dir(), ".clients.d", "clients.d", buf, cap);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

int instance_list(char (*names)[CCM_NAME_MAX + 1], int max)
{
	struct dirent *d;
	DIR *dir;
	int n = 0, dfd;

	dir = opendir(instance_run_dir());
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	dfd = dirfd(dir);
	while (n < max && (d = readdir(dir))) {
		char state[sizeof(d->d_name) + sizeof(STATE_FILE_NAME)];
		char sock[sizeof(d->d_name) + sizeof(SOCKET_FILE_NAME)];
		struct stat st;

		if (!instance_name_valid(d->d_name))
			continue;
		snprintf(state, sizeof(state), "%s/%s", d->d_name, STATE_FILE_NAME);
		snprintf(sock, sizeof(sock), "%s/%s", d->d_name, SOCKET_FILE_NAME);
		if (fstatat(dfd, state, &st, 0) < 0 && fstatat(dfd, sock, &st, 0) < 0)
			continue;
		memcpy(names[n], d->d_name, strlen(d->d_name) + 1);
		n++;
	}
	closedir(dir);
	qsort(names, (size_t)n, sizeof(names[0]), by_name);
	return n;
}
