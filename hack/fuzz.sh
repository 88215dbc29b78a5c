#!/usr/bin/env bash
# Runs every fuzz target of the main module with the fuzzing engine, each for FUZZTIME (default
# 30s), and prints per target the time it ran and the inputs it executed, then a summary table.
#
#   hack/fuzz.sh [FUZZTIME] [PACKAGE...]      (make fuzz FUZZTIME=60s)
#
# PACKAGE defaults to ./... . FUZZTARGETS, a regular expression, picks targets by name; FUZZJOBS
# (default 1) runs that many targets at once, each with its share of the CPUs; FUZZMINIMIZETIME
# (default 10s) bounds the minimization of each new input. A target that finds a crasher writes it
# to its package's testdata/fuzz/<target>/ and fails the run: keep the file (plain `go test`
# replays it from then on), fix the bug, and add a named case to the package's table tests. The
# exit status is non-zero when any target failed or found a crasher.
set -euo pipefail

fuzztime=${1:-${FUZZTIME:-30s}}
shift || true
packages=("${@:-./...}")
select=${FUZZTARGETS:-.}
jobs=${FUZZJOBS:-1}
# The engine minimizes every new interesting input for up to 60s by default, time taken from the
# run: a large one can stall a short run for most of its time.
minimizetime=${FUZZMINIMIZETIME:-10s}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

cpus=$(nproc 2>/dev/null || echo 1)
parallel=$((cpus / jobs))
((parallel >= 1)) || parallel=1

# Packages whose tests start an API server need it in the coordinating process (fuzz workers skip
# it); build or find it once, as `make test` does.
if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
	KUBEBUILDER_ASSETS=$(hack/envtest.sh)
	export KUBEBUILDER_ASSETS
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# Every target as "<package> <target>", in package order.
targets=()
while read -r pkg dir; do
	for target in $(grep -hoE '^func Fuzz[A-Za-z0-9_]+\(' "$dir"/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort -u); do
		if [[ $target =~ $select ]]; then
			targets+=("$pkg $target")
		fi
	done
done < <(go list -f '{{.ImportPath}} {{.Dir}}' "${packages[@]}")
if ((${#targets[@]} == 0)); then
	echo "fuzz: no fuzz targets match ${select@Q} in ${packages[*]}" >&2
	exit 1
fi
echo "fuzz: ${#targets[@]} targets, $fuzztime each, $jobs at a time with $parallel workers each"

# run INDEX PACKAGE TARGET: fuzzes one target, its output in $logs/INDEX.log, its wall time in
# seconds in $logs/INDEX.wall and its exit status in $logs/INDEX.status.
run() {
	local i=$1 pkg=$2 target=$3 start=$SECONDS status=0
	go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimizetime" -parallel "$parallel" "$pkg" >"$logs/$i.log" 2>&1 || status=$?
	echo $((SECONDS - start)) >"$logs/$i.wall"
	echo "$status" >"$logs/$i.status"
}

# report INDEX: prints one target's outcome and records its summary row.
report() {
	local i=$1 pkg target status wall last elapsed execs result
	read -r pkg target <<<"${targets[$i]}"
	status=$(cat "$logs/$i.status")
	wall=$(cat "$logs/$i.wall")
	# The engine's last progress line: "fuzz: elapsed: 1m0s, execs: 123456 (2057/sec), new interesting: ..."
	last=$(grep -E '^fuzz: elapsed: .*, execs: [0-9]+' "$logs/$i.log" | tail -n 1 || true)
	execs=$(sed -E 's/.*, execs: ([0-9]+).*/\1/' <<<"$last")
	# A target that fails early has no such line: its time is that of the engine's last line.
	elapsed=$(grep -oE '^fuzz: elapsed: [^,]+' "$logs/$i.log" | tail -n 1 | sed 's/^fuzz: elapsed: //' || true)
	if [ "$status" = 0 ]; then
		result=ok
	elif crasher=$(grep -oE 'testdata/fuzz/[^ ]+' "$logs/$i.log" | head -n 1) && [ -n "$crasher" ]; then
		result="CRASHER $(go list -f '{{.Dir}}' "$pkg" | sed "s|^$root/||")/$crasher"
	else
		result="FAIL (exit $status)"
	fi
	printf 'fuzz: %s %s: %s, %s execs in %s (%ss wall)\n' "$pkg" "$target" "$result" "${execs:-0}" "${elapsed:-?}" "$wall"
	if [ "$result" != ok ]; then
		sed 's/^/    /' "$logs/$i.log"
	fi
	printf '%s\t%s\t%s\t%s\t%s\n' "${pkg#github.com/authgate/authgate/}" "$target" "${elapsed:-?}" "${execs:-0}" "$result" >"$logs/$i.row"
}

running=()
for i in "${!targets[@]}"; do
	read -r pkg target <<<"${targets[$i]}"
	run "$i" "$pkg" "$target" &
	running+=("$i:$!")
	# Wait for the oldest target whenever FUZZJOBS are running, and report targets in order.
	while ((${#running[@]} >= jobs)); do
		wait "${running[0]#*:}" || true
		report "${running[0]%%:*}"
		running=("${running[@]:1}")
	done
done
for r in "${running[@]}"; do
	wait "${r#*:}" || true
	report "${r%%:*}"
done

echo
rows=()
for i in "${!targets[@]}"; do
	rows+=("$logs/$i.row")
done
# The summary table; awk pads the columns (column(1) is not everywhere).
awk -F '\t' '
	{ for (c = 1; c <= NF; c++) { cell[NR, c] = $c; if (length($c) > w[c]) w[c] = length($c) } }
	$5 == "ok" { ok++ }
	NR > 1 { execs += $4 }
	END {
		for (r = 1; r <= NR; r++) {
			line = ""
			for (c = 1; c <= 5; c++) line = line sprintf(c < 5 ? "%-" w[c] "s  " : "%s", cell[r, c])
			print line
		}
		printf "\nfuzz: %d targets, %d execs in all, %d failed or found a crasher\n", NR - 1, execs, NR - 1 - ok
	}' <(printf 'PACKAGE\tTARGET\tTIME\tEXECS\tRESULT\n') "${rows[@]}"
! grep -qv $'\tok$' "${rows[@]}"
