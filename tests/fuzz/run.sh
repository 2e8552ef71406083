#!/bin/bash
# Run each libFuzzer target (build/fuzz/fuzz_*, built by `make FUZZ=1
# fuzz-bins`) for SECONDS, from the seeds tests/tools/fuzz_seeds writes plus
# what earlier runs found (build/fuzz/corpus/TARGET). A crash, leak or
# sanitizer report fails the run; its reproducer is kept in build/fuzz/.
#   tests/fuzz/run.sh SECONDS
set -euo pipefail
secs=${1:-300}
root=$(cd "$(dirname "$0")/../.." && pwd)
B="$root/build"
seeds="$B/fuzz/seeds"
rm -rf "$seeds"
"$B/tests/tools/fuzz_seeds" "$seeds"
fail=0
for f in "$B"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	corpus="$B/fuzz/corpus/$name"
	mkdir -p "$corpus"
	log="$B/fuzz/$name.log"
	if (cd "$B/fuzz" && "$f" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=1024 \
		-print_final_stats=1 "$corpus" "$seeds/$name" >"$log" 2>&1); then
		echo "PASS  $name ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${secs}s)"
	else
		echo "FAIL  $name: $(grep -m1 -E 'ERROR|SUMMARY' "$log" || tail -n 1 "$log") (log: $log)"
		fail=1
	fi
done
exit $fail
