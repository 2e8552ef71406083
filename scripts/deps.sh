#!/bin/bash
# Install everything ferry needs on a fresh Debian 12 machine, idempotently.
#  - Debian packages for building and testing;
#  - a working CRIU >= 4.1: the system's when `criu check` passes, else Debian 13's
#    CRIU unpacked into a private prefix under .deps/ (system apt sources and libc
#    untouched), run through that prefix's own dynamic loader.
# The chosen CRIU path is recorded in .deps/criu-path.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPS="$ROOT/.deps"
STAMP="$DEPS/packages.stamp"
mkdir -p "$DEPS"

PKGS=(build-essential pkg-config libprotobuf-c-dev protobuf-c-compiler
	libnl-3-dev libnl-route-3-dev liblz4-dev lz4 libssl-dev openssl
	criu iproute2 nftables iptables busybox-static util-linux procps
	python3 qemu-system-x86 qemu-utils socat file time)

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
PREFIX="$DEPS/criu"
WRAP="$DEPS/bin/criu"
COMPAT="$DEPS/lib/criu-sockopt-compat.so"

# The wrapper runs the private CRIU through its own loader, with the sockopt
# compatibility shim for kernels >= 6.16 (see scripts/criu-sockopt-compat.c).
write_wrapper() {
	mkdir -p "$DEPS/bin" "$DEPS/lib"
	gcc -O2 -shared -fPIC -o "$COMPAT" "$ROOT/scripts/criu-sockopt-compat.c" -ldl
	cat >"$WRAP" <<W
#!/bin/sh
P="$PREFIX"
exec "\$P/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --preload "$COMPAT" --library-path "\$P/usr/lib/x86_64-linux-gnu:\$P/lib/x86_64-linux-gnu" "\$P/usr/sbin/criu" "\$@"
W
	chmod 755 "$WRAP"
}

if [ -s "$PATHFILE" ] && criu_ok "$(cat "$PATHFILE")"; then
	if [ "$(cat "$PATHFILE")" = "$WRAP" ] && ! grep -q -- --preload "$WRAP"; then
		write_wrapper
		echo "deps: private criu wrapper now preloads $COMPAT"
	fi
	exit 0
fi

if command -v criu >/dev/null && criu_ok "$(command -v criu)"; then
	command -v criu >"$PATHFILE"
	echo "deps: using system criu $(command -v criu)"
	exit 0
fi

# Private CRIU 4.1 from Debian 13, unpacked under .deps/criu.
APTDIR="$DEPS/apt-trixie"
mkdir -p "$APTDIR/lists/partial" "$APTDIR/archives/partial" "$APTDIR/debs"
cat >"$APTDIR/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SRC
APTOPTS=(-o Dir::Etc::SourceList="$APTDIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists="$APTDIR/lists" -o Dir::Cache::Archives="$APTDIR/archives"
	-o Dir::Cache::pkgcache="" -o Dir::Cache::srcpkgcache="" -o APT::Get::List-Cleanup=0)
echo "deps: fetching Debian 13 criu into $PREFIX"
apt-get "${APTOPTS[@]}" update -qq
CRIU_PKGS=(criu libcompel1 libc6 libgnutls30t64 libnettle8t64 libhogweed6t64 libp11-kit0
	libunistring5 libtasn1-6 libidn2-0 libgmp10 libnftables1 libnl-3-200 libprotobuf-c1
	libbsd0 libnet1 libuuid1 libmd0 libjansson4 libmnl0 libnftnl11 libxtables12 libffi8
	libedit2 libgcc-s1 libzstd1 libtinfo6 libcap2 libselinux1 libpcre2-8-0)
(cd "$APTDIR/debs" && rm -f ./*.deb &&
	for p in "${CRIU_PKGS[@]}"; do apt-get "${APTOPTS[@]}" download -qq "$p/trixie" 2>/dev/null || echo "deps: note: $p not downloaded"; done)
rm -rf "$PREFIX.tmp"
mkdir -p "$PREFIX.tmp"
for d in "$APTDIR"/debs/*.deb; do dpkg -x "$d" "$PREFIX.tmp"; done
rm -rf "$PREFIX"
mv "$PREFIX.tmp" "$PREFIX"
write_wrapper
if ! criu_ok "$WRAP"; then
	echo "deps: the private CRIU at $WRAP does not pass 'criu check':" >&2
	"$WRAP" check >&2 || true
	exit 1
fi
echo "$WRAP" >"$PATHFILE"
echo "deps: using private criu $("$WRAP" --version | head -1) at $WRAP"
