package image

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/authgate/authgate"

// commands are the images: each is the final stage <name>, holding the binary built from
// ./cmd/<name>, whose --help mentions flag.
var commands = []struct{ name, flag string }{
	{"webhook", "-http-addr"},
	{"operator", "-webhook-url"},
}

// The caches the golang images use: GOMODCACHE under GOPATH=/go, GOCACHE under HOME=/root.
const (
	modCache   = "/go/pkg/mod"
	buildCache = "/root/.cache/go-build"
)

// TestDockerfile checks the Dockerfile's stages, build commands and base images.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	df := readDockerfile(t, root)
	goVersion := goDirective(t, root)
	for _, p := range checkDockerfile(df, goVersion, hasLicense(t, root)) {
		t.Error(p)
	}
}

// TestDockerfileChecksFail breaks the Dockerfile in ways the checks must notice, one at a time.
func TestDockerfileChecksFail(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	text, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := goDirective(t, root)
	license := hasLicense(t, root)
	for _, m := range []struct {
		old, new, problem string
	}{
		{"USER 65532:65532\nENTRYPOINT [\"/webhook\"]", "USER root\nENTRYPOINT [\"/webhook\"]", `stage "webhook" runs as "root"`},
		{"USER 65532:65532\nENTRYPOINT [\"/operator\"]", "ENTRYPOINT [\"/operator\"]", `stage "operator" has no USER`},
		{"static-debian12:nonroot AS webhook", "static-debian12:latest AS webhook", `stage "webhook" starts from`},
		{"static-debian12:nonroot AS operator", "base-debian12:nonroot AS operator", `stage "operator" starts from`},
		{`ENTRYPOINT ["/webhook"]`, `ENTRYPOINT /webhook`, "exec form"},
		{`ENTRYPOINT ["/operator"]`, `ENTRYPOINT ["/webhook"]`, `stage "operator": ENTRYPOINT "/webhook" is not a binary`},
		{"AS operator", "AS controller", `no stage "operator"`},
		{"CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \\\n    go build -trimpath -ldflags=\"-s -w -buildid=\" -o /out/webhook", "GOOS=$TARGETOS GOARCH=$TARGETARCH \\\n    go build -trimpath -ldflags=\"-s -w -buildid=\" -o /out/webhook", "CGO_ENABLED=0"},
		{"go build -trimpath -ldflags=\"-s -w -buildid=\" -o /out/operator", "go build -ldflags=\"-s -w -buildid=\" -o /out/operator", "-trimpath"},
		{"ARG TARGETOS TARGETARCH", "ARG TARGETOS", "$TARGETARCH is not declared"},
		{"golang:1.26-bookworm", "golang:1.25-bookworm", "go.mod says go"},
		{"golang:1.26-bookworm", "golang:1.26.0-bookworm", "go.mod says go"},
		{"--platform=$BUILDPLATFORM golang", "golang", "--platform=$BUILDPLATFORM"},
		{"--mount=type=cache,target=/root/.cache/go-build \\\n    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \\\n    go build -trimpath -ldflags=\"-s -w -buildid=\" -o /out/operator", "CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \\\n    go build -trimpath -ldflags=\"-s -w -buildid=\" -o /out/operator", "cache mount at " + buildCache},
		{"COPY go.mod go.sum ./\nRUN --mount=type=cache,target=/go/pkg/mod \\\n    go mod download\n", "", "go mod download"},
		{"COPY --from=build /out/webhook /webhook\n", "", `stage "webhook": ENTRYPOINT "/webhook" is not a binary`},
		{"org.opencontainers.image.source=\"https://github.com/authgate/authgate\" \\\n      org.opencontainers.image.title=\"authgate-webhook\"", "org.opencontainers.image.title=\"authgate-webhook\"", "org.opencontainers.image.source"},
	} {
		if !strings.Contains(string(text), m.old) {
			t.Errorf("the Dockerfile no longer contains %q: update this mutation", m.old)
			continue
		}
		broken := strings.Replace(string(text), m.old, m.new, 1)
		var problems []string
		df, err := parseDockerfile(broken)
		if err != nil {
			problems = []string{err.Error()}
		} else {
			problems = checkDockerfile(df, goVersion, license)
		}
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, m.problem) }) {
			t.Errorf("with %q instead of %q, no problem mentions %q; problems: %q", m.new, m.old, m.problem, problems)
		}
	}
}

// TestParseDockerfile checks the parser on continuations, comments, quoting and stages.
func TestParseDockerfile(t *testing.T) {
	t.Parallel()
	df, err := parseDockerfile(`# syntax=docker/dockerfile:1
ARG GO=1.26
FROM --platform=$BUILDPLATFORM golang:${GO}-bookworm AS Build
ARG TARGETARCH \
    EXTRA=x
# a comment between instructions
RUN --mount=type=cache,target=/go/pkg/mod \
    # a comment inside a continuation
    A=1 B="two words" go build -ldflags='-X main.v=$EXTRA' -o /out/x ./cmd/x && \
    echo "$EXTRA" ${TARGETARCH}
from scratch
COPY --from=build /out/x /x
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(df.stages) != 2 {
		t.Fatalf("%d stages, want 2", len(df.stages))
	}
	b := df.stages[0]
	if b.name != "build" || b.image != "golang:1.26-bookworm" || b.platform != "$BUILDPLATFORM" {
		t.Errorf("stage 0 = %q from %q on %q", b.name, b.image, b.platform)
	}
	if len(b.body) != 2 || b.body[1].cmd != "RUN" || b.body[1].line != 7 {
		t.Fatalf("stage 0 body = %+v", b.body)
	}
	if s := df.stages[1]; s.name != "" || s.image != "scratch" || len(s.body) != 1 || s.body[0].cmd != "COPY" {
		t.Errorf("stage 1 = %+v", s)
	}
	runs, err := stageRuns(b, map[string]string{"TARGETARCH": "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	want := []runCmd{
		{mounts: []string{"type=cache,target=/go/pkg/mod"}, env: []string{"A=1", "B=two words"}, argv: []string{"go", "build", "-ldflags=-X main.v=$EXTRA", "-o", "/out/x", "./cmd/x"}},
		{mounts: []string{"type=cache,target=/go/pkg/mod"}, argv: []string{"echo", "x", "arm64"}},
	}
	if len(runs) != len(want) {
		t.Fatalf("runs = %+v", runs)
	}
	for i := range want {
		if !slices.Equal(runs[i].mounts, want[i].mounts) || !slices.Equal(runs[i].env, want[i].env) || !slices.Equal(runs[i].argv, want[i].argv) {
			t.Errorf("run %d = %q %q %q, want %q %q %q", i, runs[i].mounts, runs[i].env, runs[i].argv, want[i].mounts, want[i].env, want[i].argv)
		}
	}
	for _, bad := range []string{
		"RUN echo\nFROM scratch",               // an instruction before FROM
		"FROM scratch AS\n",                    // AS without a name
		"FROM scratch\nRUN echo \\",            // a continuation at the end
		"FROM golang:$NOPE",                    // an undeclared global ARG
		"FROM scratch\nRUN echo 'unterminated", // a quote left open
	} {
		df, err := parseDockerfile(bad)
		if err == nil && len(df.stages) > 0 {
			_, err = stageRuns(df.stages[0], nil)
		}
		if err == nil {
			t.Errorf("parsing %q: no error", bad)
		}
	}
}

// TestBuild runs the Dockerfile's go build commands for linux on this machine's architecture and
// checks the binaries: statically linked, built as the Dockerfile says, and able to print --help.
func TestBuild(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Fatalf("TestBuild runs the linux binaries it builds: run it on Linux (GOOS is %s)", runtime.GOOS)
	}
	root := moduleRoot(t)
	df := readDockerfile(t, root)
	platform := map[string]string{
		"TARGETOS": "linux", "TARGETARCH": runtime.GOARCH, "TARGETPLATFORM": "linux/" + runtime.GOARCH,
		"BUILDOS": "linux", "BUILDARCH": runtime.GOARCH, "BUILDPLATFORM": "linux/" + runtime.GOARCH,
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b, err := findBuild(df, c.name, platform)
			if err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(t.TempDir(), c.name)
			args := slices.Clone(b.argv[1:])
			if b.outputEq {
				args[b.outputIdx-1] = "-o=" + bin
			} else {
				args[b.outputIdx-1] = bin
			}
			cmd := exec.CommandContext(t.Context(), "go", args...)
			cmd.Dir = root
			// The environment of the golang image: the Dockerfile's assignments, the toolchain at
			// hand, no GOFLAGS from outside; and no VCS stamp, since .git is not in the build context.
			cmd.Env = append(environWithout("GOFLAGS", "GOOS", "GOARCH", "CGO_ENABLED", "GOTOOLCHAIN", "GOAMD64", "GOARM64"),
				"GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false")
			cmd.Env = append(cmd.Env, b.env...)
			t.Logf("Dockerfile %s: %s", b.where, shellJoin(append(slices.Clone(b.env), cmd.Args...)))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, out)
			}
			checkStatic(t, bin)
			checkBuildInfo(t, bin, c.name, root)
			help := exec.CommandContext(t.Context(), bin, "--help")
			help.Env = []string{"HOME=/home/nonroot"} // distroless sets little else
			out, err := help.CombinedOutput()
			if err != nil {
				t.Errorf("%s --help: %v\n%s", c.name, err, out)
			}
			if !strings.Contains(string(out), c.flag+" ") {
				t.Errorf("%s --help does not mention %s:\n%s", c.name, c.flag, out)
			}
			if fi, err := os.Stat(bin); err == nil {
				t.Logf("%s: %d bytes (%.1f MiB)", c.name, fi.Size(), float64(fi.Size())/(1<<20))
			}
		})
	}
}

// checkStatic fails unless the ELF file at bin asks for no dynamic loader and no shared library.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: it is dynamically linked", bin, p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s needs shared libraries %q (%v)", bin, libs, err)
	}
	if syms, err := f.ImportedSymbols(); (err != nil && !errors.Is(err, elf.ErrNoSymbols)) || len(syms) > 0 {
		t.Errorf("%s imports %d dynamic symbols (%v)", bin, len(syms), err)
	}
	if f.Type != elf.ET_EXEC {
		t.Errorf("%s is an ELF %v, want a static %v", bin, f.Type, elf.ET_EXEC)
	}
}

// checkBuildInfo fails unless bin is ./cmd/<name> built without cgo and with -trimpath, so that
// the build machine's paths are not in it.
func checkBuildInfo(t *testing.T, bin, name, root string) {
	t.Helper()
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if want := modulePath + "/cmd/" + name; bi.Path != want {
		t.Errorf("%s is %s, want %s", bin, bi.Path, want)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOOS": "linux"} {
		if settings[k] != want {
			t.Errorf("%s was built with %s=%q, want %q", bin, k, settings[k], want)
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(root+string(filepath.Separator))) {
		t.Errorf("%s contains the path of the repository %s", bin, root)
	}
}

// TestDockerignore checks that .dockerignore keeps in the build context every file the two
// commands need (go.mod, go.sum, the module's packages they import and the files those embed)
// and keeps out .git, bin and docs.
func TestDockerignore(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	patterns := readDockerignore(t, root)
	needed := neededFiles(t, root)
	if len(needed) < 10 || !slices.Contains(needed, "internal/login/templates/login.html") {
		t.Fatalf("go list found too little, or not the login page template: %q", needed)
	}
	for _, p := range checkIgnore(patterns, needed) {
		t.Error(p)
	}
	// The files the Dockerfile copies from the context by name.
	df := readDockerfile(t, root)
	for _, st := range df.stages {
		for _, in := range st.body {
			if in.cmd != "COPY" && in.cmd != "ADD" {
				continue
			}
			c, err := parseCopy(in)
			if err != nil {
				t.Error(err)
				continue
			}
			if c.from != "" {
				continue
			}
			for _, src := range c.srcs {
				if src == "." || src == "./" {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("line %d copies %s: %v", in.line, src, err)
				}
				if excluded(patterns, path.Clean(src)) {
					t.Errorf("line %d copies %s, which .dockerignore excludes", in.line, src)
				}
			}
		}
	}
	for _, p := range []string{".git", "bin", "docs"} {
		if !excluded(patterns, p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
}

// TestIgnoreChecksFail checks the matcher and that checkIgnore notices a needed file excluded.
func TestIgnoreChecksFail(t *testing.T) {
	t.Parallel()
	ps, err := parseIgnore("# comment\n*\n!go.mod\n!/internal/\ninternal/login/templates\n!internal/login/templates/keep.html\n")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"go.mod": false, "go.sum": true, ".git": true, ".git/HEAD": true, "internal": false,
		"internal/login/page.go": false, "internal/login/templates": true,
		"internal/login/templates/login.html": true, "internal/login/templates/keep.html": false,
	} {
		if got := excluded(ps, p); got != want {
			t.Errorf("excluded(%q) = %v, want %v", p, got, want)
		}
	}
	problems := checkIgnore(ps, []string{"go.mod", "internal/login/page.go", "internal/login/templates/login.html"})
	if len(problems) != 1 || !strings.Contains(problems[0], "internal/login/templates/login.html") {
		t.Errorf("problems = %q, want one about internal/login/templates/login.html", problems)
	}
	if _, err := parseIgnore("internal/**/testdata\n"); err == nil {
		t.Error("a ** pattern parsed, but the matcher does not implement **")
	}
}

// The Dockerfile parser: instructions one to a logical line, grouped into stages.

type instruction struct {
	line int    // where it starts
	cmd  string // the keyword, upper-cased
	args string // the rest, continuation lines joined with spaces
}

type stage struct {
	name     string // after AS, lower-cased; "" without AS
	image    string // the base image (or stage), global ARGs expanded
	platform string // the --platform value as written
	line     int
	body     []instruction
}

type dockerfile struct {
	stages []*stage
}

func (df *dockerfile) stage(name string) *stage {
	for _, st := range df.stages {
		if st.name == name {
			return st
		}
	}
	return nil
}

var (
	nameRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	assignRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	distrolessR = regexp.MustCompile(`^gcr\.io/distroless/static(-debian\d+)?:nonroot(@sha256:[0-9a-f]{64})?$`)
)

// parseDockerfile splits text into instructions (comment lines and blank lines dropped, also
// between continuation lines; the default \ escape only) and groups them into stages.
func parseDockerfile(text string) (*dockerfile, error) {
	var insts []instruction
	var cur strings.Builder
	start, cont := 0, false
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cont {
			cur.WriteByte(' ')
		} else {
			start = i + 1
			cur.Reset()
		}
		body := strings.TrimRight(line, " \t\r")
		cont = strings.HasSuffix(body, `\`)
		cur.WriteString(strings.TrimSpace(strings.TrimSuffix(body, `\`)))
		if !cont {
			s := cur.String()
			kw, rest, _ := strings.Cut(s, " ")
			if k, r, ok := strings.Cut(s, "\t"); ok && len(k) < len(kw) {
				kw, rest = k, r
			}
			insts = append(insts, instruction{line: start, cmd: strings.ToUpper(kw), args: strings.TrimSpace(rest)})
		}
	}
	if cont {
		return nil, fmt.Errorf("line %d: the Dockerfile ends inside a line continuation", start)
	}
	df := &dockerfile{}
	global := map[string]string{}
	for _, in := range insts {
		switch {
		case in.cmd == "FROM":
			st, err := parseFrom(in, global)
			if err != nil {
				return nil, err
			}
			df.stages = append(df.stages, st)
		case len(df.stages) > 0:
			last := df.stages[len(df.stages)-1]
			last.body = append(last.body, in)
		case in.cmd == "ARG":
			words, err := shellCommands(in.args, rawLookup(global))
			if err != nil || len(words) != 1 {
				return nil, fmt.Errorf("line %d: ARG %s: %v", in.line, in.args, err)
			}
			for _, w := range words[0] {
				name, def, _ := strings.Cut(w, "=")
				global[name] = def
			}
		default:
			return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
		}
	}
	return df, nil
}

func parseFrom(in instruction, global map[string]string) (*stage, error) {
	st := &stage{line: in.line}
	words := strings.Fields(in.args)
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		v, ok := strings.CutPrefix(words[0], "--platform=")
		if !ok {
			return nil, fmt.Errorf("line %d: FROM %s: unknown flag", in.line, words[0])
		}
		st.platform = v
		words = words[1:]
	}
	switch {
	case len(words) == 3 && strings.EqualFold(words[1], "AS"):
		st.name = strings.ToLower(words[2])
	case len(words) != 1:
		return nil, fmt.Errorf("line %d: FROM %s: want image [AS name]", in.line, in.args)
	}
	var missing []string
	st.image = os.Expand(words[0], func(name string) string {
		v, ok := global[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("line %d: FROM %s: no global ARG %q", in.line, words[0], missing)
	}
	return st, nil
}

// rawLookup expands a variable that vars declares to ${NAME}, leaving it for later.
func rawLookup(vars map[string]string) func(string) (string, error) {
	return func(name string) (string, error) {
		if _, ok := vars[name]; !ok {
			return "", fmt.Errorf("$%s is not declared with ARG or ENV", name)
		}
		return "${" + name + "}", nil
	}
}

// shellCommands splits a shell script into commands (at unquoted ;, &&, ||, |) and words, with
// sh's quoting: '...' literal, "..." with $ expansion and \ escapes, \ outside quotes. Variables
// ($NAME, ${NAME}) are looked up; anything fancier (redirections, subshells, `...`,
// ${NAME:-default}) is an error, since this is only for the Dockerfile's simple commands.
func shellCommands(s string, lookup func(string) (string, error)) ([][]string, error) {
	var cmds [][]string
	var words []string
	var w strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
			words = nil
		}
	}
	expand := func(i int) (int, error) { // s[i] == '$'; returns the index of the last byte used
		rest := s[i+1:]
		var name string
		var used int
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return 0, errors.New("unterminated ${")
			}
			name, used = rest[1:end], end+1
		default:
			for used < len(rest) && (rest[used] == '_' || 'a' <= rest[used] && rest[used] <= 'z' || 'A' <= rest[used] && rest[used] <= 'Z' || used > 0 && '0' <= rest[used] && rest[used] <= '9') {
				used++
			}
			if used == 0 { // a lone $
				w.WriteByte('$')
				return i, nil
			}
			name = rest[:used]
		}
		if !nameRE.MatchString(name) {
			return 0, fmt.Errorf("unsupported expansion ${%s}", name)
		}
		v, err := lookup(name)
		if err != nil {
			return 0, err
		}
		w.WriteString(v)
		return i + used, nil
	}
	for i := 0; i < len(s); i++ {
		var err error
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\r':
			endWord()
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated '")
			}
			w.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case '"':
			inWord = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0:
					i++
					w.WriteByte(s[i])
				case s[i] == '$':
					i, err = expand(i)
				case s[i] == '`':
					err = errors.New("unsupported `")
				default:
					w.WriteByte(s[i])
				}
				if err != nil {
					return nil, err
				}
			}
			if i >= len(s) {
				return nil, errors.New(`unterminated "`)
			}
		case '\\':
			if i+1 < len(s) {
				i++
				w.WriteByte(s[i])
			}
			inWord = true
		case '$':
			inWord = true
			if i, err = expand(i); err != nil {
				return nil, err
			}
		case ';', '&', '|':
			endCmd()
			if i+1 < len(s) && s[i+1] == c && c != ';' {
				i++
			}
		case '<', '>', '(', ')', '`':
			return nil, fmt.Errorf("unsupported %q", c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	endCmd()
	return cmds, nil
}

// runCmd is one command of a RUN instruction.
type runCmd struct {
	in     instruction
	mounts []string // the --mount values of the RUN
	env    []string // NAME=value words before the command
	argv   []string
}

// stageRuns returns the commands of st's RUN instructions. A $VARIABLE must be declared by an
// earlier ARG or ENV of the stage; values nil leaves it as ${NAME}, else it is values[NAME] or
// the declared default.
func stageRuns(st *stage, values map[string]string) ([]runCmd, error) {
	declared := map[string]string{}
	var runs []runCmd
	for _, in := range st.body {
		switch in.cmd {
		case "ARG", "ENV":
			cmds, err := shellCommands(in.args, rawLookup(declared))
			if err != nil || len(cmds) != 1 {
				return nil, fmt.Errorf("line %d: %s %s: %v", in.line, in.cmd, in.args, err)
			}
			if in.cmd == "ENV" && len(cmds[0]) == 2 && !strings.Contains(cmds[0][0], "=") { // ENV NAME value
				cmds[0] = []string{cmds[0][0] + "=" + cmds[0][1]}
			}
			for _, w := range cmds[0] {
				name, def, _ := strings.Cut(w, "=")
				if v, ok := values[name]; ok {
					def = v
				}
				declared[name] = def
			}
		case "RUN":
			var mounts []string
			script := in.args
			for strings.HasPrefix(script, "--") {
				flag, rest, _ := strings.Cut(script, " ")
				if v, ok := strings.CutPrefix(flag, "--mount="); ok {
					mounts = append(mounts, v)
				}
				script = strings.TrimSpace(rest)
			}
			if strings.HasPrefix(script, "[") {
				return nil, fmt.Errorf("line %d: exec-form RUN is not supported here", in.line)
			}
			lookup := rawLookup(declared)
			if values != nil {
				lookup = func(name string) (string, error) {
					v, ok := declared[name]
					if !ok {
						return "", fmt.Errorf("$%s is not declared with ARG or ENV", name)
					}
					return v, nil
				}
			}
			cmds, err := shellCommands(script, lookup)
			if err != nil {
				return nil, fmt.Errorf("line %d: stage %q: RUN: %v", in.line, st.name, err)
			}
			for _, words := range cmds {
				n := 0
				for n < len(words) && assignRE.MatchString(words[n]) {
					n++
				}
				runs = append(runs, runCmd{in: in, mounts: mounts, env: words[:n], argv: words[n:]})
			}
		}
	}
	return runs, nil
}

// goBuild is a `go build` command of a RUN.
type goBuild struct {
	runCmd
	where     string // "line N"
	output    string // the -o value
	outputIdx int    // its index in argv
	outputEq  bool   // written -o=value
	pkgs      []string
}

// goBuildFlagsWithValue are the go build flags that take a value, for telling values from packages.
var goBuildFlagsWithValue = map[string]bool{
	"o": true, "p": true, "C": true, "ldflags": true, "gcflags": true, "asmflags": true, "tags": true,
	"mod": true, "modfile": true, "overlay": true, "pgo": true, "pkgdir": true, "toolexec": true,
	"buildmode": true, "compiler": true, "gccgoflags": true, "installsuffix": true, "coverpkg": true,
	"covermode": true,
}

func parseGoBuild(r runCmd) (*goBuild, bool) {
	if len(r.argv) < 2 || path.Base(r.argv[0]) != "go" || r.argv[1] != "build" {
		return nil, false
	}
	b := &goBuild{runCmd: r, where: fmt.Sprintf("line %d", r.in.line)}
	for i := 2; i < len(r.argv); i++ {
		a := r.argv[i]
		if !strings.HasPrefix(a, "-") {
			b.pkgs = append(b.pkgs, a)
			continue
		}
		name, value, eq := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case name == "o" && eq:
			b.output, b.outputIdx, b.outputEq = value, i, true
		case name == "o" && i+1 < len(r.argv):
			i++
			b.output, b.outputIdx = r.argv[i], i
		case !eq && goBuildFlagsWithValue[name]:
			i++
		}
	}
	return b, true
}

func (b *goBuild) hasFlag(name string) bool {
	return slices.ContainsFunc(b.argv[2:], func(a string) bool {
		return a == "-"+name || a == "--"+name || a == "-"+name+"=true" || a == "--"+name+"=true"
	})
}

func (b *goBuild) hasCacheMount(target string) bool {
	return slices.ContainsFunc(b.mounts, func(m string) bool {
		return mountHasCache(m, target)
	})
}

func mountHasCache(m, target string) bool {
	kv := map[string]string{}
	for _, f := range strings.Split(m, ",") {
		k, v, _ := strings.Cut(f, "=")
		kv[k] = v
	}
	t := kv["target"]
	if t == "" {
		t = kv["dst"]
	}
	return kv["type"] == "cache" && path.Clean(t) == target
}

// copyInst is a COPY or ADD.
type copyInst struct {
	from string
	srcs []string
	dest string
}

func parseCopy(in instruction) (copyInst, error) {
	var c copyInst
	var words []string
	if strings.HasPrefix(in.args, "[") || strings.Contains(in.args, "[\"") {
		rest := in.args
		for strings.HasPrefix(rest, "--") {
			flag, r, _ := strings.Cut(rest, " ")
			words = append(words, flag)
			rest = strings.TrimSpace(r)
		}
		var list []string
		if err := json.Unmarshal([]byte(rest), &list); err != nil {
			return c, fmt.Errorf("line %d: %s %s: %v", in.line, in.cmd, in.args, err)
		}
		words = append(words, list...)
	} else {
		words = strings.Fields(in.args)
	}
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		if v, ok := strings.CutPrefix(words[0], "--from="); ok {
			c.from = strings.ToLower(v)
		}
		words = words[1:]
	}
	if len(words) < 2 {
		return c, fmt.Errorf("line %d: %s %s: want sources and a destination", in.line, in.cmd, in.args)
	}
	c.srcs, c.dest = words[:len(words)-1], words[len(words)-1]
	return c, nil
}

// findBuild follows the final stage name from its ENTRYPOINT to the COPY --from that put the
// binary there and to the go build that wrote it; values expands the build's variables.
func findBuild(df *dockerfile, name string, values map[string]string) (*goBuild, error) {
	st := df.stage(name)
	if st == nil {
		return nil, fmt.Errorf("no stage %q", name)
	}
	var entry []string
	var copies []copyInst
	for _, in := range st.body {
		switch in.cmd {
		case "ENTRYPOINT":
			entry = nil
			if err := json.Unmarshal([]byte(in.args), &entry); err != nil || len(entry) == 0 {
				return nil, fmt.Errorf("stage %q: line %d: ENTRYPOINT %s is not in exec form [\"/binary\", ...] (the shell form needs /bin/sh, which distroless lacks)", name, in.line, in.args)
			}
		case "COPY", "ADD":
			c, err := parseCopy(in)
			if err != nil {
				return nil, err
			}
			copies = append(copies, c)
		}
	}
	if entry == nil {
		return nil, fmt.Errorf("stage %q has no ENTRYPOINT", name)
	}
	for _, c := range slices.Backward(copies) {
		if c.from == "" || len(c.srcs) != 1 {
			continue
		}
		dest := c.dest
		if strings.HasSuffix(dest, "/") {
			dest += path.Base(c.srcs[0])
		}
		if path.Clean(dest) != path.Clean(entry[0]) {
			continue
		}
		from := df.stage(c.from)
		if from == nil {
			return nil, fmt.Errorf("stage %q copies %s from stage %q, which does not exist", name, c.srcs[0], c.from)
		}
		runs, err := stageRuns(from, values)
		if err != nil {
			return nil, err
		}
		var found *goBuild
		for _, r := range runs {
			if b, ok := parseGoBuild(r); ok && b.output != "" && path.Clean(b.output) == path.Clean(c.srcs[0]) {
				found = b
			}
		}
		if found == nil {
			return nil, fmt.Errorf("stage %q copies %s from stage %q, where no go build writes it", name, c.srcs[0], c.from)
		}
		return found, nil
	}
	return nil, fmt.Errorf("stage %q: ENTRYPOINT %q is not a binary copied from another stage", name, entry[0])
}

// checkDockerfile returns what is wrong with df, given go.mod's go version.
func checkDockerfile(df *dockerfile, goVersion string, license bool) []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	buildStages := map[*stage]bool{}
	for _, c := range commands {
		st := df.stage(c.name)
		if st == nil {
			report("no stage %q (docker build --target %s)", c.name, c.name)
			continue
		}
		// A final stage: nothing builds on it.
		for _, other := range df.stages {
			if other.image == c.name {
				report("line %d: stage %q starts from stage %q, which should be a final stage", other.line, other.name, c.name)
			}
		}
		if !distrolessR.MatchString(st.image) {
			report("line %d: stage %q starts from %s, want gcr.io/distroless/static-debian12:nonroot", st.line, c.name, st.image)
		}
		user := ""
		labels := map[string]string{}
		declared := map[string]string{}
		for _, in := range st.body {
			switch in.cmd {
			case "USER":
				user = in.args
			case "RUN":
				report("line %d: stage %q has a RUN, but distroless has no shell", in.line, c.name)
			case "ARG":
				for _, w := range strings.Fields(in.args) {
					name, def, _ := strings.Cut(w, "=")
					declared[name] = def
				}
			case "LABEL":
				cmds, err := shellCommands(in.args, rawLookup(declared))
				if err != nil || len(cmds) != 1 {
					report("line %d: LABEL %s: %v", in.line, in.args, err)
					continue
				}
				for _, w := range cmds[0] {
					k, v, _ := strings.Cut(w, "=")
					labels[k] = v
				}
			}
		}
		switch user {
		case "65532:65532", "nonroot:nonroot", "nonroot":
		case "":
			report("stage %q has no USER 65532:65532", c.name)
		default:
			report("stage %q runs as %q, want USER 65532:65532 (the chart's runAsUser and runAsGroup)", c.name, user)
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.source": "https://github.com/" + strings.TrimPrefix(modulePath, "github.com/"),
			"org.opencontainers.image.title":  "authgate-" + c.name,
		} {
			if labels[k] != want {
				report("stage %q: label %s is %q, want %q", c.name, k, labels[k], want)
			}
		}
		if labels["org.opencontainers.image.description"] == "" {
			report("stage %q has no label org.opencontainers.image.description", c.name)
		}
		if _, ok := labels["org.opencontainers.image.licenses"]; ok != license {
			report("stage %q: label org.opencontainers.image.licenses present: %v, but a LICENSE file: %v", c.name, ok, license)
		}
		b, err := findBuild(df, c.name, nil)
		if err != nil {
			report("%v", err)
			continue
		}
		if want := "./cmd/" + c.name; !slices.Equal(b.pkgs, []string{want}) {
			report("%s: go build %q, want %s", b.where, b.pkgs, want)
		}
		for _, want := range []string{"CGO_ENABLED=0", "GOOS=${TARGETOS}", "GOARCH=${TARGETARCH}"} {
			if !slices.Contains(b.env, want) {
				report("%s: go build for %s without %s (has %q)", b.where, c.name, want, b.env)
			}
		}
		if !b.hasFlag("trimpath") {
			report("%s: go build for %s without -trimpath", b.where, c.name)
		}
		for _, target := range []string{modCache, buildCache} {
			if !b.hasCacheMount(target) {
				report("%s: go build for %s without a cache mount at %s", b.where, c.name, target)
			}
		}
		for _, st := range df.stages {
			if slices.Contains(st.body, b.in) {
				buildStages[st] = true
			}
		}
	}
	for st := range buildStages {
		problems = append(problems, checkBuildStage(df, st, goVersion)...)
	}
	return problems
}

// checkBuildStage checks the stage that runs the go builds: its golang image, its platform and
// that modules are downloaded from go.mod and go.sum alone, before the rest is copied.
func checkBuildStage(df *dockerfile, st *stage, goVersion string) []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if st.platform != "$BUILDPLATFORM" && st.platform != "${BUILDPLATFORM}" {
		report("line %d: stage %q should run on --platform=$BUILDPLATFORM and cross-compile (has %q)", st.line, st.name, st.platform)
	}
	base := st
	for seen := 0; df.stage(base.image) != nil && seen < len(df.stages); seen++ {
		base = df.stage(base.image)
	}
	if err := checkGolangImage(base.image, goVersion); err != nil {
		report("line %d: %v", base.line, err)
	}
	download, contextCopy := -1, -1
	for i, in := range st.body {
		switch in.cmd {
		case "RUN":
			if download < 0 && strings.Contains(in.args, "go mod download") {
				download = i
				if !slices.ContainsFunc(strings.Fields(in.args), func(f string) bool {
					m, ok := strings.CutPrefix(f, "--mount=")
					return ok && mountHasCache(m, modCache)
				}) {
					report("line %d: go mod download without a cache mount at %s", in.line, modCache)
				}
			}
		case "COPY", "ADD":
			c, err := parseCopy(in)
			if err != nil || c.from != "" {
				continue
			}
			onlyMod := !slices.ContainsFunc(c.srcs, func(s string) bool { return s != "go.mod" && s != "go.sum" })
			if !onlyMod && contextCopy < 0 {
				contextCopy = i
			}
		}
	}
	switch {
	case download < 0:
		report("stage %q has no RUN go mod download", st.name)
	case contextCopy >= 0 && contextCopy < download:
		report("line %d: stage %q copies more than go.mod and go.sum before go mod download", st.body[contextCopy].line, st.name)
	}
	return problems
}

// checkGolangImage checks that image is an official golang image of goVersion's minor version,
// and not older than goVersion when it names a patch release (the images set GOTOOLCHAIN=local).
func checkGolangImage(image, goVersion string) error {
	ref, _, _ := strings.Cut(image, "@")
	repo, tag, _ := strings.Cut(ref, ":")
	switch repo {
	case "golang", "library/golang", "docker.io/library/golang":
	default:
		return fmt.Errorf("the go builds run on %s, want an official golang image", image)
	}
	v, _, _ := strings.Cut(tag, "-")
	have, err1 := parseVersion(v)
	want, err2 := parseVersion(goVersion)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("%s: %v", image, err)
	}
	if have[0] != want[0] || have[1] != want[1] || len(have) > 2 && len(want) > 2 && have[2] < want[2] {
		return fmt.Errorf("%s: go.mod says go %s, want golang:%d.%d or a newer %d.%d patch release", image, goVersion, want[0], want[1], want[0], want[1])
	}
	return nil
}

func parseVersion(v string) ([]int, error) {
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("version %q: want major.minor[.patch]", v)
	}
	var n []int
	for _, p := range parts {
		i, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("version %q: %v", v, err)
		}
		n = append(n, i)
	}
	return n, nil
}

// The .dockerignore matcher: Docker's rules without **, the last matching pattern deciding, a
// pattern excluding also everything under what it matches.

type ignorePattern struct {
	pattern string
	except  bool // !pattern
}

func parseIgnore(text string) ([]ignorePattern, error) {
	var ps []ignorePattern
	for i, line := range strings.Split(text, "\n") {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		except := strings.HasPrefix(p, "!")
		if except {
			p = strings.TrimSpace(p[1:])
		}
		p = strings.TrimPrefix(path.Clean(filepath.ToSlash(p)), "/")
		if strings.Contains(p, "**") {
			return nil, fmt.Errorf(".dockerignore line %d: %s: ** is not implemented by this test's matcher", i+1, line)
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf(".dockerignore line %d: %s: %v", i+1, line, err)
		}
		ps = append(ps, ignorePattern{pattern: p, except: except})
	}
	return ps, nil
}

// excluded reports whether the file at rel (slash-separated, relative to the context) stays out.
func excluded(ps []ignorePattern, rel string) bool {
	parts := strings.Split(rel, "/")
	out := false
	for _, p := range ps {
		for n := len(parts); n > 0; n-- {
			if ok, _ := path.Match(p.pattern, strings.Join(parts[:n], "/")); ok {
				out = !p.except
				break
			}
		}
	}
	return out
}

func checkIgnore(ps []ignorePattern, needed []string) []string {
	var problems []string
	for _, f := range needed {
		if excluded(ps, f) {
			problems = append(problems, fmt.Sprintf(".dockerignore excludes %s, which the image build needs", f))
		}
	}
	return problems
}

// neededFiles lists, relative to root, go.mod, go.sum and every file of the module's own packages
// that go build compiles or embeds for cmd/webhook and cmd/operator, for linux/amd64 and arm64.
func neededFiles(t *testing.T, root string) []string {
	t.Helper()
	set := map[string]bool{"go.mod": true, "go.sum": true}
	for _, arch := range []string{"amd64", "arm64"} {
		args := []string{"list", "-deps", "-json=ImportPath,Dir,Module,GoFiles,SFiles,HFiles,SysoFiles,EmbedFiles,Error"}
		for _, c := range commands {
			args = append(args, "./cmd/"+c.name)
		}
		cmd := exec.CommandContext(t.Context(), "go", args...)
		cmd.Dir = root
		cmd.Env = append(environWithout("GOOS", "GOARCH", "CGO_ENABLED", "GOFLAGS"), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		for dec.More() {
			var p struct {
				ImportPath, Dir                                string
				Module                                         *struct{ Main bool }
				GoFiles, SFiles, HFiles, SysoFiles, EmbedFiles []string
				Error                                          *struct{ Err string }
			}
			if err := dec.Decode(&p); err != nil {
				t.Fatal(err)
			}
			if p.Error != nil {
				t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
			}
			if p.Module == nil || !p.Module.Main {
				continue
			}
			dir, err := filepath.Rel(root, p.Dir)
			if err != nil || strings.HasPrefix(dir, "..") {
				t.Fatalf("package %s is in %s, outside %s", p.ImportPath, p.Dir, root)
			}
			for _, files := range [][]string{p.GoFiles, p.SFiles, p.HFiles, p.SysoFiles, p.EmbedFiles} {
				for _, f := range files {
					set[filepath.ToSlash(filepath.Join(dir, f))] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Helpers.

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not in a module")
	}
	return filepath.Dir(gomod)
}

func readDockerfile(t *testing.T, root string) *dockerfile {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df, err := parseDockerfile(string(text))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return df
}

func readDockerignore(t *testing.T, root string) []ignorePattern {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := parseIgnore(string(text))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// goDirective returns the version of go.mod's go line, after checking its module line.
func goDirective(t *testing.T, root string) string {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	module, version := "", ""
	for _, line := range strings.Split(string(text), "\n") {
		switch f := strings.Fields(line); {
		case len(f) == 2 && f[0] == "module":
			module = f[1]
		case len(f) == 2 && f[0] == "go":
			version = f[1]
		}
	}
	if module != modulePath || version == "" {
		t.Fatalf("go.mod: module %q, go %q; want module %s and a go line", module, version, modulePath)
	}
	return version
}

func hasLicense(t *testing.T, root string) bool {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(root, "LICEN[SC]E*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m) > 0
}

// shellJoin quotes words for the log where sh would need it.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = w
		if w == "" || strings.ContainsAny(w, " \t'\"$\\") {
			q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// environWithout returns the environment without the named variables.
func environWithout(names ...string) []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(names, name)
	})
}
