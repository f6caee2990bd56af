#!/bin/sh
# instructions.sh: instructions executed per cluster Apply and per cluster
# Map item, in the driver and in the worker processes, counted by valgrind
# (cachegrind's Ir event, the same count callgrind gives), so that two
# versions of the library can be compared without the machine's noise.
#
# Run from the repository root or bench/:
#
#	sh bench/instructions.sh              # Apply, Map and ApplyAsync
#	ASYNC_ONLY=1 sh bench/instructions.sh   # ApplyAsync only
#	N1=200 N2=1200 sh bench/instructions.sh
#	KEEP=/tmp/cg sh bench/instructions.sh   # keep the files for cg_annotate
#
# Each benchmark of pool/cluster runs twice under valgrind, with N1 and N2
# iterations; (Ir at N2 - Ir at N1) / (N2 - N1) is the count per
# iteration, start-up and pool creation cancelled out. Worker processes are
# the test binary re-executed, followed by --trace-children.
#
# Needs valgrind (apt-get install valgrind). GODEBUG turns off the two
# things valgrind 3.19 cannot follow in a Go program: RDTSCP (the VM's CPU
# may lack it while valgrind's CPUID reports it) and asynchronous preemption
# signals. callgrind 3.19 itself aborts on a Go program's signals
# (threads.c: vgCallgrind_post_signal); cachegrind with --cache-sim=no
# counts the same instructions.
set -eu
cd "$(dirname "$0")/.."
N1=${N1:-500}
N2=${N2:-2500}
MAPITEMS=${MAPITEMS:-100000}
MAPN1=${MAPN1:-2}
MAPN2=${MAPN2:-12}
AN1=${AN1:-2000}
AN2=${AN2:-10000}
if [ -n "${KEEP:-}" ]; then
	# KEEP=DIR keeps the cachegrind files, DIR/apply.N/cg.PID and
	# DIR/map.N/cg.PID, for cg_annotate and cg_diff.
	dir=$KEEP
	mkdir -p "$dir"
else
	dir=$(mktemp -d)
	trap 'rm -rf "$dir"' EXIT
fi
go test -c -o "$dir/cluster.test" ./pool/cluster

# count NAME BENCH N: prints "driver workers" instruction totals.
count() {
	out="$dir/$1.$3"
	mkdir -p "$out"
	echo "counting $2 at ${3}x" >&2
	# Worker processes under valgrind start some 50 times slower; on a busy
	# machine one may miss the 10 s handshake timeout: try again.
	for try in 1 2 3 4 5; do
		rm -f "$out"/cg.*
		if GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off valgrind --tool=cachegrind --cache-sim=no \
			--trace-children=yes --cachegrind-out-file="$out/cg.%p" \
			"$dir/cluster.test" -test.run '^$' -test.bench "$2" -test.benchtime "${3}x" \
			>"$out/log" 2>&1; then
			break
		fi
		[ "$try" = 5 ] && { cat "$out/log" >&2; exit 1; }
		echo "failed (see below); trying again" >&2
		grep -A3 -e '--- FAIL' "$out/log" >&2 || true
	done
	# The driver is the lowest PID: valgrind started it first.
	driver=$(ls "$out"/cg.* | sort -t. -k2 -n | head -1)
	d=$(grep '^summary:' "$driver" | awk '{print $2}')
	w=0
	for f in "$out"/cg.*; do
		[ "$f" = "$driver" ] && continue
		w=$((w + $(grep '^summary:' "$f" | awk '{print $2}')))
	done
	echo "$d $w"
}

# per NAME BENCH N1 N2 UNITS LABEL
per() {
	set -- "$1" "$2" "$3" "$4" "$5" "$6"
	a=$(count "$1" "$2" "$3")
	b=$(count "$1" "$2" "$4")
	echo "$a $b" | awk -v n="$(($4 - $3))" -v u="$5" -v l="$6" '{
		d = ($3 - $1) / n / u; w = ($4 - $2) / n / u
		printf "%-28s driver %10.0f   workers %10.0f   total %10.0f instructions\n", l, d, w, d + w
	}'
}

if [ -z "${ASYNC_ONLY:-}" ]; then
	per apply 'BenchmarkInstrApply$' "$N1" "$N2" 1 "per Apply"
	[ -n "${APPLY_ONLY:-}" ] && exit 0
	per map "BenchmarkInstrMap/items=$MAPITEMS\$" "$MAPN1" "$MAPN2" "$MAPITEMS" "per Map item ($MAPITEMS items)"
fi
per async 'BenchmarkInstrApplyAsync/inflight=64$' "$AN1" "$AN2" 1 "per ApplyAsync (64 in flight)"
