#!/usr/bin/env bash
# Builds helm, which the chart's tests (test/helm, test/k8s) render deploy/helm/nuncio with, from
# the Go module proxy and prints the binary's path. The binary is cached outside the repository,
# keyed by helm's version and the Go version that built it, so the build (a minute or two on 2
# cores) happens once per machine:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/nuncio/helm-<helm version>/<go version>/helm
#
# usage: tools/helm.sh [--check]
#   --check  print the path only when the binary is already cached; exit 1 otherwise
set -euo pipefail

# The newest helm v3 that resolved from the module proxy when this was last bumped; find a newer
# one with: go list -m -versions helm.sh/helm/v3
version=v3.22.1
gover=$(go env GOVERSION)
dir=${XDG_CACHE_HOME:-$HOME/.cache}/nuncio/helm-$version/$gover
bin=$dir/helm

if [[ -x $bin ]]; then
	echo "$bin"
	exit 0
fi
[[ ${1:-} == --check ]] && exit 1

mkdir -p "$dir"
# Concurrent callers wait for one build.
exec 9>"$dir/.lock"
flock 9
if [[ ! -x $bin ]]; then
	echo "helm.sh: building helm $version with $gover (once)" >&2
	start=$SECONDS
	# Outside any module, so the repository's go.mod plays no part; the version stamp is what
	# helm's own build sets, so `helm version` reports it.
	ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN=$tmp \
		go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$version")
	mv "$tmp/helm" "$bin"
	echo "helm.sh: built in $((SECONDS - start))s" >&2
fi
echo "$bin"
