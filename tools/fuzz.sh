#!/usr/bin/env bash
# Runs every Fuzz function of the given packages, one after the other, for FUZZTIME each. A
# failure leaves its input under the package's testdata/fuzz, where it becomes a regression case
# of the package's ordinary tests once committed.
#
# usage: tools/fuzz.sh FUZZTIME [PACKAGE PATTERN...]
set -euo pipefail
(($#)) || { sed -n '6s/^# //p' "$0" >&2; exit 2; }
fuzztime=$1
shift
(($#)) || set -- ./...

count=0
while read -r pkg dir; do
	# go test -list builds the package's test binary; the grep spares that for the (many)
	# packages that cannot have a fuzz function.
	grep -qsE '^func Fuzz' "$dir"/*_test.go || continue
	names=$(go test -list '^Fuzz' "$pkg" | grep -E '^Fuzz' || true)
	for name in $names; do
		echo "fuzz: $pkg $name for $fuzztime"
		go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" "$pkg"
		count=$((count + 1))
	done
done < <(go list -e -f '{{.ImportPath}} {{.Dir}}' "$@")
echo "fuzz: $count fuzz functions ran for $fuzztime each"
