# nftcut.sh: cut a link between the test nodes without a word.  Sourced
# by the suites and benchmarks that cut links (tests/links,
# tests/cluster/test_pacemaker.sh, bench/failover.sh).
#
# nftcut_create TABLE: the nftables table inet TABLE, whose set "cut" holds
# TCP ports: a packet between 127.0.0.2 and 127.0.0.3 to or from a port in
# the set is dropped as it arrives (no RST: a pulled cable, not a refusal).
# Every loopback packet passes prerouting, so one hook sees both
# directions.  Cut and restore with
#   nft add element inet TABLE cut '{ PORT }'
#   nft delete element inet TABLE cut '{ PORT }'
# and remove it with `nft delete table inet TABLE`.  Status: nft's.
nftcut_create() {
	nft -f - <<EOF
table inet $1 {
	set cut { type inet_service; }
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		ip saddr 127.0.0.2-127.0.0.3 ip daddr 127.0.0.2-127.0.0.3 tcp dport @cut drop
		ip saddr 127.0.0.2-127.0.0.3 ip daddr 127.0.0.2-127.0.0.3 tcp sport @cut drop
	}
}
EOF
}
