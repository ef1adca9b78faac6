#!/usr/bin/env bash
# Builds upstream CRIU from source, outside the repository, for
# TestCRIUInterop's exchange with a CRIU newer than Debian's 3.17:
#
#   bash scripts/build-criu.sh
#   go test ./test/e2e -count=1 -v -run TestCRIUInterop -timeout 60m \
#       -args -criu "$CRIU_BUILD_DIR/src/criu/criu"
#
# Not run by scripts/test.sh or CI: it needs the network (or a clone of
# CRIU's repository) and several minutes. Environment:
#
#   CRIU_VERSION    the tag to build (default v4.2)
#   CRIU_BUILD_DIR  where the sources and the build go (default
#                   /work/criu-build; the binary is $CRIU_BUILD_DIR/src/criu/criu)
#   CRIU_REPO       the repository to clone (default CRIU's on GitHub; a
#                   local clone or mirror works too)
#
# The build leaves out CRIU's optional parts that the exchange does not
# use (the AMD GPU and CUDA plugins, gnutls for --tls). The binary links
# its libraries dynamically; TestCRIUInterop copies them into the test
# guest with the binary (and answers libnftables's probe with a stub, as
# for Debian's criu).
set -euo pipefail
version=${CRIU_VERSION:-v4.2}
dir=${CRIU_BUILD_DIR:-/work/criu-build}
repo=${CRIU_REPO:-https://github.com/checkpoint-restore/criu.git}

# CRIU's build dependencies (CRIU's Documentation/INSTALL and its CI's
# Debian package list), Debian package names.
deps=(build-essential pkg-config git python3 python3-protobuf
	protobuf-compiler protobuf-c-compiler libprotobuf-dev libprotobuf-c-dev
	libnl-3-dev libnet1-dev libcap-dev libaio-dev libbsd-dev
	libnftables-dev uuid-dev)
missing=()
for p in "${deps[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "build-criu: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	echo "build-criu: installing ${missing[*]} with apt-get"
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi

mkdir -p "$dir"
if [ ! -d "$dir/src/.git" ]; then
	git clone -q "$repo" "$dir/src"
fi
cd "$dir/src"
git fetch -q --tags "$repo" 2>/dev/null || true
git checkout -q "$version"
# -j2: the build machines have two CPUs.
make -j"${CRIU_JOBS:-2}" criu CONFIG_AMDGPU=n NO_GNUTLS=1 >"$dir/make.log" 2>&1 || {
	tail -n 30 "$dir/make.log" >&2
	echo "build-criu: make failed, log in $dir/make.log" >&2
	exit 1
}
"$dir/src/criu/criu" --version
echo "build-criu: built $dir/src/criu/criu"
