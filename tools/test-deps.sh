#!/usr/bin/env bash
# Installs what the tests need when it is missing, so that a fresh machine (CI's included) needs
# nothing but Go to run `make test`. Safe to run again: it only acts on what is missing.
#
# usage: tools/test-deps.sh [--peers]
#   (always) h2spec (internal/codec/http2), and the Debian packages the test suite itself
#            drives: chromium (dashboard test), etcd-server and iproute2 (test/k8s),
#            redis-server (internal/ratelimit), kube-apiserver built by
#            tools/kube-apiserver.sh (about 6 minutes on 2 cores, once per machine), and helm
#            built by tools/helm.sh (test/helm, test/k8s; a few minutes, once per machine)
#   --peers  also install the real peers that benchmarks run against, from Debian's packages:
#            nginx haproxy caddy wrk nghttp2-client redis-server
set -euo pipefail

# The newest staticcheck that resolves from the module proxy when this was last bumped; find a
# newer one with: go list -m -versions honnef.co/go/tools
STATICCHECK_VERSION=v0.8.2
# h2spec has no go.mod; its last release resolves its dependencies at their newest.
H2SPEC_VERSION=v2.2.1+incompatible
# Packages the tests need; without them those tests skip, which CI must not do silently.
TEST_PACKAGES=(chromium etcd-server iproute2 redis-server)
PEERS=(nginx haproxy caddy wrk nghttp2-client redis-server)

usage() { sed -n '5,12s/^# \{0,1\}//p' "$0"; }

peers=false
for arg in "$@"; do
	case $arg in
	--peers) peers=true ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done

gobin=$(go env GOBIN)
if [[ -z $gobin ]]; then
	gopath=$(go env GOPATH)
	gobin=${gopath%%:*}/bin
fi
# staticcheck must be built with (at least) the Go that builds the module, and a version made for
# an older Go fails to load the packages: check the version, not just the presence.
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -qF "(${STATICCHECK_VERSION#v})"; then
	echo "test-deps: installing staticcheck $STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

# internal/codec/http2 runs h2spec's conformance suite when the binary is there (about 40s to
# build, once per machine).
if [[ ! -x $gobin/h2spec ]]; then
	echo "test-deps: installing h2spec $H2SPEC_VERSION"
	go install "github.com/summerwind/h2spec/cmd/h2spec@$H2SPEC_VERSION"
fi

# test/k8s runs against a real API server, built from source and cached outside the repository.
"$(dirname "$0")/kube-apiserver.sh" >/dev/null
# test/helm and test/k8s render the chart with helm, built from the module proxy and cached the same way.
"$(dirname "$0")/helm.sh" >/dev/null

wanted=("${TEST_PACKAGES[@]}")
$peers && wanted+=("${PEERS[@]}")

missing=()
for p in "${wanted[@]}"; do
	if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
		missing+=("$p")
	fi
done
((${#missing[@]})) || exit 0

sudo=()
if ((EUID != 0)); then
	command -v sudo >/dev/null || { echo "test-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	sudo=(sudo)
fi
# Tests start their own servers on loopback ports; keep the packages' postinst scripts from
# starting system-wide ones that would hold :80 and :6379. 101 is "action forbidden" to
# invoke-rc.d; an existing policy is left alone.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
	"${sudo[@]}" chmod 755 "$policy"
	trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi
echo "test-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
