#!/usr/bin/env bash
# Builds the real kube-apiserver that test/k8s runs against from tools/kube-apiserver (a module of
# its own, so the main module never depends on k8s.io/kubernetes) and prints the binary's path.
# The binary is cached outside the repository, keyed by the Kubernetes version and the Go version
# that built it, so the slow build (about 6 minutes on 2 cores) happens once per machine:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/nuncio/kube-apiserver-v1.36.3/<go version>/kube-apiserver
#
# usage: tools/kube-apiserver.sh [--check]
#   --check  print the path only when the binary is already cached; exit 1 otherwise
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$here/kube-apiserver
version=$(cd "$src" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
gover=$(go env GOVERSION)
dir=${XDG_CACHE_HOME:-$HOME/.cache}/nuncio/kube-apiserver-$version/$gover
bin=$dir/kube-apiserver

if [[ -x $bin ]]; then
	echo "$bin"
	exit 0
fi
[[ ${1:-} == --check ]] && exit 1

mkdir -p "$dir"
# Concurrent callers (two test packages, or make deps beside a test) wait for one build.
exec 9>"$dir/.lock"
flock 9
if [[ ! -x $bin ]]; then
	echo "kube-apiserver.sh: building kube-apiserver $version with $gover (several minutes, once)" >&2
	start=$SECONDS
	# The version stamps are what upstream's build sets; without them /version reports v0.0.0.
	pkg=k8s.io/component-base/version
	major=${version#v}; major=${major%%.*}
	minor=${version#v*.}; minor=${minor%%.*}
	ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	(cd "$src" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin.tmp" .)
	mv "$bin.tmp" "$bin"
	echo "kube-apiserver.sh: built in $((SECONDS - start))s" >&2
fi
echo "$bin"
