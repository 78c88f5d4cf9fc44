/* The link state machine, the choice of a link for a port, and the spread
 * of ports over links. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "proto/link_policy.h"

static void test_life(void)
{
	struct link_health l = { 0 };

	CHECK(l.state == LINK_DOWN && !strcmp(link_state_name(l.state), "down"), "starts down");
	link_connecting(&l, 0);
	link_connected(&l, 0);
	CHECK(l.state == LINK_VERIFYING, "connected: verifying first");
	CHECK(link_verified(&l, 1000, 500) && l.state == LINK_UP, "first time verified: up at once");
	l.out_bytes = 4096;
	link_failed(&l, 2000, 100);
	CHECK(l.state == LINK_DOWN && l.downs == 1 && l.retry_at == 2100 && l.out_bytes == 0,
	      "failed: down, counted, retry in 100 ms, nothing in flight");
	link_connecting(&l, 0);
	link_failed(&l, 2200, 100);
	CHECK(l.downs == 1, "a failed reconnect is not another down");
	link_connecting(&l, 0);
	link_connected(&l, 0);
	CHECK(!link_verified(&l, 3000, 500) && l.state == LINK_DAMPED && l.damp_until == 3500,
	      "back after a failure: damped for damp-ms");
	CHECK(!link_tick(&l, 3499) && l.state == LINK_DAMPED, "still damped before its time");
	CHECK(link_tick(&l, 3500) && l.state == LINK_UP, "up once it stayed up damp-ms");
	CHECK(!link_tick(&l, 4000), "an up link does not become up again");
	link_failed(&l, 5000, 100);
	link_connected(&l, 0);
	CHECK(!link_verified(&l, 6000, 500) && l.state == LINK_DAMPED, "damped again");
	link_failed(&l, 6100, 100);
	CHECK(l.state == LINK_DOWN && l.downs == 3, "failing while damped counts and resets");
	link_connected(&l, 0);
	CHECK(link_verified(&l, 7000, 0) && l.state == LINK_UP, "damp-ms 0: up at once");
	CHECK(!strcmp(link_state_name(LINK_DAMPED), "damped") &&
	      !strcmp(link_state_name((enum link_state)99), "?"), "state names");
}

static void test_pick(void)
{
	struct link_health l[3] = { { .state = LINK_UP, .out_bytes = 100, .priority = 1 },
				    { .state = LINK_UP, .out_bytes = 10, .priority = 5 },
				    { .state = LINK_DOWN, .out_bytes = 0, .priority = 9 } };
	int counts[3] = { 0, 3, 0 };

	CHECK(links_pick(l, counts, 3, LINK_POLICY_BALANCE) == 1, "balance: fewest bytes in flight");
	l[1].out_bytes = 100;
	CHECK(links_pick(l, counts, 3, LINK_POLICY_BALANCE) == 0, "balance tie: fewer ports");
	CHECK(links_pick(l, counts, 3, LINK_POLICY_STANDBY) == 1, "standby: highest priority up");
	l[0].priority = 5;
	CHECK(links_pick(l, counts, 3, LINK_POLICY_STANDBY) == 0, "standby tie: lowest index");
	l[0].state = l[1].state = LINK_DAMPED;
	CHECK(links_pick(l, counts, 3, LINK_POLICY_BALANCE) == -1, "no link up: none (damped is not up)");
}

static void test_assign(void)
{
	struct link_health l[3] = { { .state = LINK_UP }, { .state = LINK_UP }, { .state = LINK_DOWN } };
	uint64_t load[6] = { 900, 100, 500, 400, 0, 0 };
	int assign[6] = { -1, -1, -1, -1, -1, -1 }, on[3] = { 0 };
	uint64_t sum[3] = { 0 };

	CHECK(links_assign(l, 3, LINK_POLICY_BALANCE, load, 6, assign) == 6, "all placed");
	for (int k = 0; k < 6; k++) {
		on[assign[k]]++;
		sum[assign[k]] += load[k];
	}
	CHECK(on[2] == 0 && on[0] == 2 && on[1] == 4,
	      "only up links; the idle ports onto the lighter one");
	CHECK(sum[0] == 1000 && sum[1] == 900, "loads spread: the heaviest apart (%llu / %llu)",
	      (unsigned long long)sum[0], (unsigned long long)sum[1]);
	CHECK(links_assign(l, 3, LINK_POLICY_BALANCE, load, 6, assign) == 0,
	      "a balanced assignment stays as it is");
	l[0].state = LINK_DOWN;
	CHECK(links_assign(l, 3, LINK_POLICY_BALANCE, load, 6, assign) == 2, "link 0 down: its ports move");
	for (int k = 0; k < 6; k++)
		EXPECT(assign[k] == 1, "port %d on link 1", k);
	l[0].state = LINK_UP;
	l[0].priority = 7;
	CHECK(links_assign(l, 3, LINK_POLICY_STANDBY, load, 6, assign) == 6,
	      "standby: all onto the preferred link");
	memset(load, 0, sizeof(load));
	l[0].priority = 0;
	CHECK(links_assign(l, 3, LINK_POLICY_BALANCE, load, 6, assign) == 3,
	      "idle ports: half of them move back");
	l[0].state = l[1].state = LINK_DOWN;
	CHECK(links_assign(l, 3, LINK_POLICY_STANDBY, load, 6, assign) == -1 && assign[0] == 0,
	      "no link up: nothing changes");
}

int main(void)
{
	test_life();
	test_pick();
	test_assign();
	return check_done();
}
