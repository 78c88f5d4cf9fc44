#!/usr/bin/env bash
# check-layers.sh OBJDIR [SRCDIR]: the calls between lib/'s object files
# (nm: what each leaves undefined, and who defines it) must point down the
# layers, and the call graph between files must have no cycle: no two
# files call each other, even through a third.
#
# The layers, top down (a folder calls only folders below it):
#   cli -> daemon -> state -> conf -> tp -> proto, client -> base
# (conf reads addresses with tp's parser; the exchange in proto matches
# clients in their wire form, so it needs nothing of conf.)
#
# The #include lines of SRCDIR's .c and .h files must point down the same
# way: a header of a higher folder is a dependency before it is a call.
#
# OBJDIR is a tree of objects laid out as SRCDIR (default lib) is: only
# objects whose source is still there count. Prints each violation; exits
# 1 when there is one, 2 on a usage error.
set -u
dir=${1:?usage: check-layers.sh OBJDIR [SRCDIR]}
src=${2:-lib}
[ -d "$dir" ] || { echo "check-layers: no $dir" >&2; exit 2; }
rank() {
	case $1 in
	base) echo 0 ;;
	proto | client) echo 1 ;;
	tp) echo 2 ;;
	conf) echo 3 ;;
	state) echo 4 ;;
	daemon) echo 5 ;;
	cli) echo 6 ;;
	*) echo 9 ;;
	esac
}
defs=$(mktemp) edges=$(mktemp)
trap 'rm -f "$defs" "$edges"' EXIT
objs=$( (cd "$dir" && find . -name '*.o') | sed 's|^\./||' | sort |
	while read -r o; do [ ! -e "$src/${o%.o}.c" ] || echo "$o"; done)
[ -n "$objs" ] || { echo "check-layers: no objects under $dir" >&2; exit 2; }
for o in $objs; do
	nm --defined-only "$dir/$o" | awk -v f="$o" '$2 ~ /^[TDBR]$/ { print $3, f }'
done | sort >"$defs"
for o in $objs; do
	nm -u "$dir/$o" | awk '{ print $2 }' | sort -u |
		join - "$defs" | awk -v f="$o" '$2 != f { print f, $2, $1 }'
done | sort -u >"$edges"
bad=0
# Folders: a call may only go to a lower rank, or stay in its folder.
while read -r from to sym; do
	a=${from%%/*} b=${to%%/*}
	[ "$a" = "$b" ] && continue
	if [ "$(rank "$a")" -le "$(rank "$b")" ]; then
		echo "check-layers: $from calls $sym in $to: $a may not call $b"
		bad=1
	fi
done <"$edges"
# Headers: an #include "FOLDER/..." goes down or stays in its folder.
while IFS=: read -r file _ inc; do
	a=${file#"$src"/}
	a=${a%%/*}
	b=$(printf '%s' "$inc" | sed -n 's/^#include "\([a-z]*\)\/.*/\1/p')
	[ -n "$b" ] && [ "$a" != "$b" ] || continue
	if [ "$(rank "$a")" -le "$(rank "$b")" ]; then
		echo "check-layers: ${file#"$src"/} includes ${inc#\#include }: $a may not use $b"
		bad=1
	fi
done < <(grep -n '^#include "[a-z]*/' "$src"/*/*.c "$src"/*/*.h 2>/dev/null)
# Files: no cycle (tsort names the files on one).
if ! cut -d' ' -f1,2 "$edges" | sort -u | tsort >/dev/null 2>"$defs.cyc"; then
	echo "check-layers: the calls between files go round:"
	grep -v '^tsort: -: input contains a loop:' "$defs.cyc" | sed 's/^tsort: /  /'
	for pair in $(cut -d' ' -f1,2 "$edges" | sort -u | tr ' ' ':'); do
		f=${pair%%:*} t=${pair#*:}
		grep -q "^$t $f " "$edges" && echo "  $f <-> $t ($(awk -v f="$f" -v t="$t" '$1 == f && $2 == t { print $3 }' "$edges" | head -3 | tr '\n' ' '))"
	done
	bad=1
fi
rm -f "$defs.cyc"
exit $bad
