package main

import (
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

func TestBuildFields(t *testing.T) {
	vcs := func(rev, tm, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "-trimpath", Value: "true"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: tm},
			{Key: "vcs.modified", Value: modified},
		}
	}
	tests := []struct {
		name     string
		revision string // -X main.revision
		settings []debug.BuildSetting
		want     []string
	}{
		{name: "no metadata", want: nil},
		{
			name:     "clean tree",
			settings: vcs("3cc2478", "2026-12-07T21:00:00Z", "false"),
			want:     []string{"commit 3cc2478", "committed 2026-12-07T21:00:00Z"},
		},
		{
			name:     "modified tree",
			settings: vcs("3cc2478", "2026-12-07T21:00:00Z", "true"),
			want:     []string{"commit 3cc2478-dirty", "committed 2026-12-07T21:00:00Z"},
		},
		{
			name:     "stamped revision without vcs metadata",
			revision: "abcdef0",
			want:     []string{"commit abcdef0"},
		},
		{
			name:     "stamped revision wins",
			revision: "abcdef0",
			settings: vcs("3cc2478", "2026-12-07T21:00:00Z", "true"),
			want:     []string{"commit abcdef0", "committed 2026-12-07T21:00:00Z"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildFields(tc.revision, tc.settings); !slices.Equal(got, tc.want) {
				t.Errorf("buildFields = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestVersionLine(t *testing.T) {
	got := versionLine()
	if !strings.HasPrefix(got, "nuncio ") || !strings.Contains(got, "go1.") {
		t.Errorf("versionLine = %q, want the version and the Go toolchain", got)
	}
}
