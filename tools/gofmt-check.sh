#!/usr/bin/env bash
# Fails listing the Go files of the given packages that gofmt would change. It goes through
# go list rather than `gofmt -l .` so that testdata (which may hold deliberately broken Go) and
# files outside any package are left alone.
#
# usage: tools/gofmt-check.sh [PACKAGE PATTERN...]
set -euo pipefail
(($#)) || set -- ./...

mapfile -t files < <(go list -e -f '{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .CgoFiles}}{{$d}}/{{.}}
{{end}}{{range .TestGoFiles}}{{$d}}/{{.}}
{{end}}{{range .XTestGoFiles}}{{$d}}/{{.}}
{{end}}{{range .IgnoredGoFiles}}{{$d}}/{{.}}
{{end}}' "$@" | sed '/^$/d')
((${#files[@]})) || exit 0
unformatted=$(gofmt -l "${files[@]}")
if [[ -n $unformatted ]]; then
	echo "gofmt: these files need gofmt -w:" >&2
	echo "$unformatted" >&2
	exit 1
fi
