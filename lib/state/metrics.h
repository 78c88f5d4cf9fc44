/* metrics: the status (struct handoff) in the Prometheus text exposition
 * format, for node_exporter's textfile collector and `ccm-early metrics`.
 *
 * The same struct the handoff files and `status` are made from, so the
 * metrics never disagree with them.  Names follow Prometheus' conventions:
 * ccm_ prefix, base units (seconds, bytes), counters end in _total; every
 * series carries instance (the manager's instance: "default" for the one
 * unnamed), per-link series link (its index), per-client ones client.
 * Time since a link's last change: time() - ccm_link_state_changed_timestamp_seconds. */
#ifndef CCM_METRICS_H
#define CCM_METRICS_H

#include <stddef.h>

#include "state/handoff.h"

#define METRICS_TEXT_MAX 65536
#define METRICS_FILE     "metrics"        /* in the state directory */
#define METRICS_PROM     "ccm-early.prom" /* in metrics-dir */

/* Format into buf (NUL-terminated).  The length, or -ENOSPC when cap is
 * too small. */
int metrics_format(const struct handoff *h, const char *instance, char *buf, size_t cap);

#endif
