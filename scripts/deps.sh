#!/bin/bash
# Install everything ferry needs on a fresh Debian 12 machine, idempotently.
#  - Debian packages for building and testing;
#  - CRIU from a pinned list, newest first: 4.2.1 from Debian sid, 4.1.1 from
#    Debian 13 (trixie), each unpacked with its library closure into its own
#    private prefix .deps/criu-VERSION (system apt sources and libc untouched)
#    and run through that prefix's own dynamic loader by .deps/bin/criu-VERSION.
#    The newest that passes `criu check` is the one ferry uses: .deps/bin/criu
#    points to it and .deps/criu-path names it; .deps/criu-versions lists every
#    one that passes (the test matrix of `make check-kernels`). Without any, the
#    system's criu when it is >= 4.1 and passes `criu check`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPS="$ROOT/.deps"
STAMP="$DEPS/packages.stamp"
mkdir -p "$DEPS"

PKGS=(build-essential pkg-config libprotobuf-c-dev protobuf-c-compiler
	libnl-3-dev libnl-route-3-dev liblz4-dev lz4 libssl-dev openssl
	criu iproute2 nftables iptables busybox-static util-linux procps
	python3 qemu-system-x86 qemu-utils socat file time
	libarchive-dev libseccomp-dev libjansson-dev zstd rsync restic
	clang libclang-rt-14-dev)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

criu_ok() {
	local c=$1
	"$c" check >/dev/null 2>&1 || return 1
	local v
	v=$("$c" --version 2>/dev/null | sed -n 's/^Version: *//p')
	[ -n "$v" ] || return 1
	# need >= 4.1
	local maj=${v%%.*} rest=${v#*.}
	local min=${rest%%.*}
	((maj > 4 || (maj == 4 && min >= 1)))
}

PATHFILE="$DEPS/criu-path"
VERSIONS="$DEPS/criu-versions"
COMPAT="$DEPS/lib/criu-sockopt-compat.so"

# The pinned list, newest first: Debian version, suite, the suite's libnet.
CRIU_PINS=(
	"4.2.1-1 sid libnet9"
	"4.1.1-1 trixie libnet1"
)
# CRIU's library closure (besides criu, libcompel1 and libnet), from the same suite.
CRIU_LIBS=(libc6 libgnutls30t64 libnettle8t64 libhogweed6t64 libp11-kit0
	libunistring5 libtasn1-6 libidn2-0 libgmp10 libnftables1 libnl-3-200 libprotobuf-c1
	libbsd0 libuuid1 libmd0 libjansson4 libmnl0 libnftnl11 libxtables12 libffi8
	libedit2 libgcc-s1 libzstd1 libtinfo6 libcap2 libselinux1 libpcre2-8-0)

# needs_shim VERSION: CRIU before 4.2 cannot dump inet sockets on kernels >=
# 6.16 without the sockopt shim (scripts/criu-sockopt-compat.c); 4.2 fixed it.
needs_shim() {
	local maj=${1%%.*} rest=${1#*.}
	local min=${rest%%.*}
	((maj < 4 || (maj == 4 && min < 2)))
}

# write_wrapper VERSION: .deps/bin/criu-VERSION runs the private CRIU through
# its own loader (with the shim where needed).
write_wrapper() {
	local v=$1 prefix="$DEPS/criu-$1" w="$DEPS/bin/criu-$1" pre=""
	mkdir -p "$DEPS/bin" "$DEPS/lib"
	if needs_shim "$v"; then
		gcc -O2 -shared -fPIC -o "$COMPAT" "$ROOT/scripts/criu-sockopt-compat.c" -ldl
		pre="--preload $COMPAT "
	fi
	cat >"$w" <<W
#!/bin/sh
P="$prefix"
exec "\$P/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ${pre}--library-path "\$P/usr/lib/x86_64-linux-gnu:\$P/lib/x86_64-linux-gnu" "\$P/usr/sbin/criu" "\$@"
W
	chmod 755 "$w"
}

# install_pin DEBVERSION SUITE LIBNET: the pinned CRIU into .deps/criu-VERSION
# (once); returns non-zero when the suite no longer carries that version.
install_pin() {
	local debver=$1 suite=$2 libnet=$3 v=${1%%-*}
	local prefix="$DEPS/criu-$v" aptdir="$DEPS/apt-$2"
	if [ -f "$prefix/.ready" ]; then
		write_wrapper "$v"
		return 0
	fi
	mkdir -p "$aptdir/lists/partial" "$aptdir/archives/partial" "$aptdir/debs-$v"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
		>"$aptdir/sources.list"
	local o=(-o Dir::Etc::SourceList="$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists="$aptdir/lists" -o Dir::Cache::Archives="$aptdir/archives"
		-o Dir::Cache::pkgcache="" -o Dir::Cache::srcpkgcache="" -o APT::Get::List-Cleanup=0
		-o APT::Sandbox::User=root)
	echo "deps: fetching criu $debver from Debian $suite into $prefix"
	apt-get "${o[@]}" update -qq || return 1
	(
		cd "$aptdir/debs-$v" && rm -f ./*.deb &&
			apt-get "${o[@]}" download -qq "criu=$debver" "libcompel1=$debver" &&
			for p in "$libnet" "${CRIU_LIBS[@]}"; do
				apt-get "${o[@]}" download -qq "$p/$suite" 2>/dev/null ||
					echo "deps: note: $p not downloaded"
			done
	) || { echo "deps: criu $debver is not in Debian $suite (any more)"; return 1; }
	rm -rf "$prefix.tmp"
	mkdir -p "$prefix.tmp"
	for d in "$aptdir/debs-$v"/*.deb; do dpkg -x "$d" "$prefix.tmp"; done
	rm -rf "$prefix"
	mv "$prefix.tmp" "$prefix"
	touch "$prefix/.ready"
	write_wrapper "$v"
}

chosen="" ok=()
for pin in "${CRIU_PINS[@]}"; do
	read -r debver suite libnet <<<"$pin"
	v=${debver%%-*}
	install_pin "$debver" "$suite" "$libnet" || continue
	if criu_ok "$DEPS/bin/criu-$v"; then
		ok+=("$v $DEPS/bin/criu-$v")
		[ -n "$chosen" ] || chosen=$v
	else
		echo "deps: criu $v does not pass 'criu check' here:"
		"$DEPS/bin/criu-$v" check 2>&1 | tail -n 3 | sed 's/^/deps:   /'
	fi
done
if [ -n "$chosen" ]; then
	printf '%s\n' "${ok[@]}" >"$VERSIONS"
	ln -sfn "criu-$chosen" "$DEPS/bin/criu"
	new="$DEPS/bin/criu"
	if [ "$(cat "$PATHFILE" 2>/dev/null)" != "$new" ] || [ ! -e "$DEPS/.chosen-$chosen" ]; then
		rm -f "$DEPS"/.chosen-*
		touch "$DEPS/.chosen-$chosen"
		echo "$new" >"$PATHFILE"
		echo "deps: using private criu $chosen at $new (also passing: ${#ok[@]} version(s), see $VERSIONS)"
	fi
	exit 0
fi
if command -v criu >/dev/null && criu_ok "$(command -v criu)"; then
	command -v criu >"$PATHFILE"
	echo "$("$(command -v criu)" --version | sed -n 's/^Version: *//p') $(command -v criu)" >"$VERSIONS"
	echo "deps: no pinned criu works here; using system criu $(command -v criu)"
	exit 0
fi
echo "deps: no working CRIU >= 4.1 (pinned: ${CRIU_PINS[*]})" >&2
exit 1
