#!/bin/bash
# The layer order (docs/architecture.md): a module includes its own layer or
# a lower one, by folder ("criu/rpc.h"), never a higher one. `make check` runs
# this first; it prints every include that breaks the order and fails.
#   scripts/check-layers.sh [ROOT]
set -u
cd "${1:-$(dirname "$0")/..}" || exit 2
LAYERS=(lib proto criu tenant snapshot transport migrate agent cmd)
declare -A rank
for i in "${!LAYERS[@]}"; do rank[${LAYERS[$i]}]=$i; done

bad=0 n=0
for layer in "${LAYERS[@]}"; do
	[ -d "$layer" ] || continue
	for f in "$layer"/*.c "$layer"/*.h; do
		[ -f "$f" ] || continue
		while IFS=: read -r line inc; do
			n=$((n + 1))
			top=${inc%%/*}
			if [[ "$inc" != */* ]]; then
				echo "$f:$line: #include \"$inc\": name the folder (e.g. \"$layer/$inc\")"
				bad=$((bad + 1))
			elif [ -z "${rank[$top]+x}" ]; then
				echo "$f:$line: #include \"$inc\": $top/ is not a layer (${LAYERS[*]})"
				bad=$((bad + 1))
			elif ((rank[$top] > rank[$layer])); then
				echo "$f:$line: #include \"$inc\": $layer/ may not include the higher layer $top/"
				bad=$((bad + 1))
			fi
		done < <(grep -no '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*"' "$f" |
			sed 's/^\([0-9]*\):.*"\(.*\)"$/\1:\2/')
	done
done
if ((bad)); then
	order=$(printf "%s < " "${LAYERS[@]}")
	echo "layers: $bad of $n includes break the order ${order% < }"
	exit 1
fi
echo "layers: $n includes follow the order ${LAYERS[*]}"
