#!/usr/bin/env bash
# Runs go test on the given packages: with the race detector, except for the packages whose
# import path matches NORACE (an extended regular expression), which run without it.
#
# usage: NORACE=regexp TEST_TIMEOUT=10m tools/gotest.sh [PACKAGE PATTERN...]
set -euo pipefail
(($#)) || set -- ./...
norace=${NORACE:-'/test/(e2e|conformance)(/|$)'}
timeout=${TEST_TIMEOUT:-10m}

race=()
plain=()
while read -r p; do
	if [[ $p =~ $norace ]]; then plain+=("$p"); else race+=("$p"); fi
done < <(go list -e "$@")

# Both sets run even when the first fails, so that one run reports every failure.
status=0
if ((${#race[@]})); then
	go test -race -count=1 -timeout "$timeout" "${race[@]}" || status=$?
fi
if ((${#plain[@]})); then
	echo "gotest: without -race: ${plain[*]}"
	go test -count=1 -timeout "$timeout" "${plain[@]}" || status=$?
fi
exit "$status"
