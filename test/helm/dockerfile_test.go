package helmtest

import (
	"encoding/json"
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
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var logical string
	for line := range strings.Lines(string(data)) {
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
				t.Fatalf("%s before the first FROM", cmd)
			}
		default:
			s := &stages[len(stages)-1]
			s.body = append(s.body, instruction{cmd: cmd, args: args})
		}
	}
	return stages
}

// TestDockerfile checks the properties the chart relies on in deploy/Dockerfile: a static binary
// in a final stage with no shell, run as a non-root uid by an exec-form ENTRYPOINT. Docker is
// not run here; the build itself is not tested.
func TestDockerfile(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	stages := parseDockerfile(t, filepath.Join(root, "deploy/Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a builder and a final stage", len(stages))
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage FROM %s, want distroless/static or scratch", final.from)
	}
	var user, entrypoint string
	for _, in := range final.body {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "RUN", "SHELL":
			t.Errorf("final stage has %s %s: there is no shell in it", in.cmd, in.args)
		case "COPY":
			if !strings.HasPrefix(in.args, "--from=") {
				t.Errorf("final stage copies %q from the context: it should hold only what the builder made", in.args)
			}
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric non-root uid (runAsNonRoot cannot check a name)", user)
	} else if n != 65532 {
		t.Errorf("USER %q: the chart runs uid 65532", user)
	}
	var argv []string
	if err := json.Unmarshal([]byte(entrypoint), &argv); err != nil || len(argv) == 0 || argv[0] != "/nuncio" {
		t.Errorf("ENTRYPOINT %s: want the exec form running /nuncio (the shell form needs a shell)", entrypoint)
	}
	var static bool
	for _, s := range stages[:len(stages)-1] {
		for _, in := range s.body {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") && strings.Contains(in.args, "CGO_ENABLED=0") {
				static = true
			}
		}
	}
	if !static {
		t.Error("no `CGO_ENABLED=0 go build` in a build stage: the binary must be static for distroless/static")
	}

	// The chart's default image is this Dockerfile's.
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
	df, _ := os.ReadFile(filepath.Join(root, "deploy/Dockerfile"))
	if v.Image.Repository == "" || !strings.Contains(string(df), "-t "+v.Image.Repository+":") {
		t.Errorf("the chart's image %q is not what deploy/Dockerfile's build command tags", v.Image.Repository)
	}
}
