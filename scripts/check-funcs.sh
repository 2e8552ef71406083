#!/bin/bash
# No function over MAX lines (default 80), counted from its opening brace to
# its closing one (the Linux brace style of .clang-format puts both in column
# 0). Prints the offenders and fails; `make check` runs it.
#   scripts/check-funcs.sh [MAX]
set -u
cd "$(dirname "$0")/.." || exit 2
MAX=${1:-80}
git ls-files '*.c' | grep -v '^tests/' | xargs awk -v max="$MAX" '
	FNR == 1 { name = ""; open = 0 }
	/^[A-Za-z_].*\(/ && !open { sig = $0 }
	/^\{/ && !open { open = FNR; name = sig; next }
	/^\}/ && open {
		n = FNR - open - 1
		if (n > max) { printf "%s:%d: %d lines: %s\n", FILENAME, open, n, name; bad++ }
		open = 0
	}
	END { if (bad) { printf "funcs: %d functions over %d lines\n", bad, max; exit 1 } }
' && echo "funcs: no function over $MAX lines"
