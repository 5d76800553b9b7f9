package helmtest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
}

// stage is the instructions from one FROM to the next.
type stage struct {
	from, name string
	body       []instruction
}

// parseDockerfile reads the subset of the syntax deploy/Dockerfile uses: comments, "\"
// continuations and one instruction per logical line.
func parseDockerfile(data string) ([]stage, error) {
	var stages []stage
	var logical string
	for line := range strings.Lines(data) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			logical += cont + " "
			continue
		}
		logical += line
		text := strings.TrimSpace(logical)
		logical = ""
		if text == "" {
			continue
		}
		cmd, args, _ := strings.Cut(text, " ")
		cmd, args = strings.ToUpper(cmd), strings.TrimSpace(args)
		switch {
		case cmd == "FROM":
			f := strings.Fields(args)
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
		case len(stages) == 0:
			if cmd != "ARG" {
				return nil, fmt.Errorf("%s before the first FROM", cmd)
			}
		default:
			s := &stages[len(stages)-1]
			s.body = append(s.body, instruction{cmd: cmd, args: args})
		}
	}
	return stages, nil
}

// dockerfileProblems lists what keeps a Dockerfile from building the image the chart expects: a
// static binary in a final stage with no shell, run as uid 65532 by an exec-form ENTRYPOINT.
func dockerfileProblems(stages []stage) []string {
	if len(stages) < 2 {
		return []string{fmt.Sprintf("%d stages, want a builder and a final stage", len(stages))}
	}
	var problems []string
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		problems = append(problems, "final stage FROM "+final.from+", want distroless/static or scratch")
	}
	var user, entrypoint string
	for _, in := range final.body {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "RUN", "SHELL":
			problems = append(problems, "final stage has "+in.cmd+": there is no shell in it")
		case "COPY", "ADD":
			if !strings.HasPrefix(in.args, "--from=") {
				problems = append(problems, "final stage copies "+in.args+" from the context: it should hold only what the builder made")
			}
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n != 65532 {
		problems = append(problems, fmt.Sprintf("USER %q: want uid 65532, numeric (runAsNonRoot cannot check a name)", user))
	}
	var argv []string
	if err := json.Unmarshal([]byte(entrypoint), &argv); err != nil || len(argv) == 0 || argv[0] != "/nuncio" {
		problems = append(problems, "ENTRYPOINT "+entrypoint+": want the exec form running /nuncio (the shell form needs a shell)")
	}
	static := false
	for _, s := range stages[:len(stages)-1] {
		for _, in := range s.body {
			if in.cmd == "RUN" && strings.Contains(in.args, "CGO_ENABLED=0") && strings.Contains(in.args, "go build") {
				static = true
			}
		}
	}
	if !static {
		problems = append(problems, "no `CGO_ENABLED=0 go build` in a build stage: the binary must be static for distroless/static")
	}
	return problems
}

// TestDockerfile checks deploy/Dockerfile's properties by reading it, and that the check finds
// each fault it looks for. Docker is not run here: the build itself is not tested.
func TestDockerfile(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ours, err := os.ReadFile(filepath.Join(root, "deploy/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	const builder = "FROM golang:1.26 AS build\nRUN CGO_ENABLED=0 go build -o /out/nuncio ./cmd/nuncio\n"
	tests := []struct {
		name       string
		dockerfile string
		want       string // a problem reported, or "" for none
	}{
		{name: "deploy/Dockerfile", dockerfile: string(ours)},
		{name: "good", dockerfile: builder + "FROM scratch\nCOPY --from=build /out/nuncio /nuncio\nUSER 65532:65532\nENTRYPOINT [\"/nuncio\"]\n"},
		{name: "root", dockerfile: builder + "FROM scratch\nCOPY --from=build /out/nuncio /nuncio\nUSER 0\nENTRYPOINT [\"/nuncio\"]\n", want: "USER"},
		{name: "named user", dockerfile: builder + "FROM scratch\nCOPY --from=build /out/nuncio /nuncio\nUSER nonroot\nENTRYPOINT [\"/nuncio\"]\n", want: "USER"},
		{name: "no user", dockerfile: builder + "FROM scratch\nCOPY --from=build /out/nuncio /nuncio\nENTRYPOINT [\"/nuncio\"]\n", want: "USER"},
		{name: "shell form", dockerfile: builder + "FROM scratch\nCOPY --from=build /out/nuncio /nuncio\nUSER 65532\nENTRYPOINT /nuncio run\n", want: "ENTRYPOINT"},
		{name: "distro base", dockerfile: builder + "FROM debian:12\nRUN apt-get update\nCOPY --from=build /out/nuncio /nuncio\nUSER 65532\nENTRYPOINT [\"/nuncio\"]\n", want: "FROM debian"},
		{name: "run in final stage", dockerfile: builder + "FROM gcr.io/distroless/static-debian12\nRUN chmod +x /nuncio\nUSER 65532\nENTRYPOINT [\"/nuncio\"]\n", want: "final stage has RUN"},
		{name: "cgo", dockerfile: "FROM golang:1.26 AS build\nRUN go build -o /out/nuncio ./cmd/nuncio\nFROM scratch\nCOPY --from=build /out/nuncio /nuncio\nUSER 65532\nENTRYPOINT [\"/nuncio\"]\n", want: "CGO_ENABLED=0"},
		{name: "single stage", dockerfile: "FROM scratch\nUSER 65532\nENTRYPOINT [\"/nuncio\"]\n", want: "1 stages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stages, err := parseDockerfile(tc.dockerfile)
			if err != nil {
				t.Fatal(err)
			}
			problems := dockerfileProblems(stages)
			switch {
			case tc.want == "" && len(problems) > 0:
				t.Errorf("problems: %q", problems)
			case tc.want != "" && !strings.Contains(strings.Join(problems, "\n"), tc.want):
				t.Errorf("problems %q, want one about %q", problems, tc.want)
			}
		})
	}
}

// TestChartImage checks that the chart's default image is the one deploy/Dockerfile's build
// command tags.
func TestChartImage(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	values, err := os.ReadFile(filepath.Join(root, "deploy/helm/nuncio/values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Image struct{ Repository string } `json:"image"`
	}
	if err := yaml.Unmarshal(values, &v); err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(filepath.Join(root, "deploy/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Image.Repository == "" || !strings.Contains(string(df), "-t "+v.Image.Repository+":") {
		t.Errorf("the chart's image %q is not what deploy/Dockerfile's build command tags", v.Image.Repository)
	}
}
