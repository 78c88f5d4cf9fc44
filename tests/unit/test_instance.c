/* test_instance: the instance name rule and where each instance's files
 * go. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "base/instance.h"

static const struct {
	const char *name;
	int valid;
} names[] = {
	{ "mirror", 1 }, { "ctrl_a", 1 }, { "a", 1 }, { "x9", 1 },
	{ "abcdefghijklmnopqrstuvwxyz01234", 1 },    /* 31 bytes */
	{ "abcdefghijklmnopqrstuvwxyz012345", 0 },   /* 32 */
	{ "", 0 }, { "Mirror", 0 }, { "9x", 0 }, { "_a", 0 }, { "a-b", 0 }, { "a.b", 0 },
	{ "../etc", 0 }, { "a/b", 0 },
	/* The unnamed instance's own files: /etc/ccm/ccm.conf, /run/ccm/state,
	 * /run/ccm/metrics. */
	{ "ccm", 0 }, { "state", 0 }, { "metrics", 0 },
	{ "ccm2", 1 }, { "states", 1 }, { "metric", 1 },
};

int main(void)
{
	char buf[INSTANCE_PATH_MAX];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		CHECK(instance_name_valid(names[i].name) == names[i].valid, "'%s' is %s", names[i].name,
		      names[i].valid ? "a name" : "not a name");
	CHECK(!instance_name_valid(NULL), "NULL is not a name");

	setenv("CCM_CONF_DIR", "/c", 1);
	setenv("CCM_RUN_DIR", "/r", 1);
	CHECK(instance_config_path(NULL, buf, sizeof(buf)) == 0 && !strcmp(buf, "/c/ccm.conf"),
	      "unnamed: /c/ccm.conf (%s)", buf);
	CHECK(instance_config_path("mirror", buf, sizeof(buf)) == 0 && !strcmp(buf, "/c/mirror.conf"),
	      "mirror: /c/mirror.conf (%s)", buf);
	CHECK(instance_clients_dir("mirror", buf, sizeof(buf)) == 0 &&
	      !strcmp(buf, "/c/mirror.clients.d"), "mirror: /c/mirror.clients.d (%s)", buf);
	CHECK(instance_state_dir("", buf, sizeof(buf)) == 0 && !strcmp(buf, "/r"),
	      "\"\" is the unnamed one: /r (%s)", buf);
	CHECK(instance_state_dir("mirror", buf, sizeof(buf)) == 0 && !strcmp(buf, "/r/mirror"),
	      "mirror: /r/mirror (%s)", buf);
	CHECK(instance_state_dir("state", buf, sizeof(buf)) == -EINVAL,
	      "state: refused, not /r/state (the unnamed handoff)");
	CHECK(instance_config_path("ccm", buf, sizeof(buf)) == -EINVAL,
	      "ccm: refused, not /c/ccm.conf (the unnamed configuration)");
	CHECK(instance_state_dir("mirror", buf, 8) == -ENAMETOOLONG, "too long for the buffer");
	return check_done();
}
