#!/usr/bin/env bash
# Regenerates golden files: runs with -update the tests of every package whose tests use the
# golden helper (internal/testutil/golden, which defines the flag). Only those packages: a test
# binary that does not define -update refuses it.
#
# usage: GOLDEN_RUN=regexp tools/testdata.sh [PACKAGE PATTERN...]
set -euo pipefail
(($#)) || set -- ./...
run=${GOLDEN_RUN:-.}
module=$(go list -m)
helper=$module/internal/testutil/golden

pkgs=()
while read -r pkg imports; do
	[[ " $imports " == *" $helper "* ]] && pkgs+=("$pkg")
done < <(go list -e -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' "$@")

if ((${#pkgs[@]} == 0)); then
	echo "testdata: no package's tests use $helper"
	exit 0
fi
go test -count=1 -run "$run" "${pkgs[@]}" -update
