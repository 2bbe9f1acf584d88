package compose_test

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/oshirase/oshirase/dev/harness"
)

// Docker is not available where the suite runs, so these tests read the
// Dockerfiles themselves and do what their build stage does, step by
// step, in a directory standing in for the build image's filesystem, then
// what the runtime stage does (runtime_test.go) in another. The parser
// knows only the instructions our Dockerfiles use and fails on any other,
// so that a change to a Dockerfile cannot slip past untested.

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line  int
	cmd   string   // upper case: RUN, COPY, …
	flags []string // leading --name=value words
	args  string
}

// stage is one FROM and what follows it.
type stage struct {
	from, name string
	ins        []instruction
}

type dockerfile struct {
	path   string
	stages []stage
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		ins     []instruction
		pending strings.Builder
		start   int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue // comments may sit between continuation lines too
		}
		if pending.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(body + " ")
			continue
		}
		pending.WriteString(line)
		words := strings.Fields(pending.String())
		pending.Reset()
		in := instruction{line: start, cmd: strings.ToUpper(words[0])}
		rest := words[1:]
		for len(rest) > 0 && strings.HasPrefix(rest[0], "--") {
			in.flags, rest = append(in.flags, rest[0]), rest[1:]
		}
		in.args = strings.Join(rest, " ")
		ins = append(ins, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if pending.Len() > 0 {
		t.Fatalf("%s: ends inside a continuation line", path)
	}

	df := dockerfile{path: path}
	for _, in := range ins {
		if in.cmd == "FROM" {
			w := strings.Fields(in.args)
			s := stage{from: w[0]}
			if len(w) == 3 && strings.EqualFold(w[1], "AS") {
				s.name = w[2]
			}
			df.stages = append(df.stages, s)
			continue
		}
		if len(df.stages) == 0 {
			t.Fatalf("%s:%d: %s before FROM", path, in.line, in.cmd)
		}
		s := &df.stages[len(df.stages)-1]
		s.ins = append(s.ins, in)
	}
	if len(df.stages) == 0 {
		t.Fatalf("%s: no FROM", path)
	}
	return df
}

func (df dockerfile) stage(t *testing.T, name string) stage {
	t.Helper()
	for _, s := range df.stages {
		if s.name == name {
			return s
		}
	}
	t.Fatalf("%s: no stage %q", df.path, name)
	return stage{}
}

func (df dockerfile) final() stage { return df.stages[len(df.stages)-1] }

// all returns the arguments of every cmd instruction in s.
func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (in instruction) flag(name string) (string, bool) {
	for _, f := range in.flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// env parses ENV's key=value form.
func (in instruction) env() map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Fields(in.args) {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = strings.Trim(v, `"'`)
	}
	return out
}

// runtime is what the final stage says about the image it makes.
type runtime struct {
	binary     string // path in the build stage, copied into the image
	dest       string // where COPY puts it in the image (a directory if it ends in /)
	user       string // USER: uid[:gid]
	entrypoint []string
	env        map[string]string
	expose     []int
}

func (df dockerfile) runtime(t *testing.T) (buildStage string, rt runtime) {
	t.Helper()
	rt.env = map[string]string{}
	for _, in := range df.final().ins {
		switch in.cmd {
		case "COPY":
			from, ok := in.flag("from")
			if !ok {
				t.Fatalf("%s:%d: the runtime stage should copy only the built binary", df.path, in.line)
			}
			w := strings.Fields(in.args)
			if len(w) != 2 || rt.binary != "" {
				t.Fatalf("%s:%d: the runtime stage should copy one file, the built binary, once", df.path, in.line)
			}
			buildStage, rt.binary, rt.dest = from, w[0], w[1]
		case "USER":
			rt.user = in.args
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &rt.entrypoint); err != nil {
				t.Fatalf("%s:%d: ENTRYPOINT should be the exec (JSON) form: %v", df.path, in.line, err)
			}
		case "ENV":
			for k, v := range in.env() {
				rt.env[k] = v
			}
		case "EXPOSE":
			for _, w := range strings.Fields(in.args) {
				p, err := strconv.Atoi(strings.TrimSuffix(w, "/tcp"))
				if err != nil {
					t.Fatalf("%s:%d: EXPOSE %s", df.path, in.line, w)
				}
				rt.expose = append(rt.expose, p)
			}
		default:
			t.Fatalf("%s:%d: %s in the runtime stage: teach this test", df.path, in.line, in.cmd)
		}
	}
	if rt.binary == "" {
		t.Fatalf("%s: the runtime stage copies no binary", df.path)
	}
	return buildStage, rt
}

// goBuild returns the build stage's go build command and the environment
// set for it by ENV.
func (s stage) goBuild(t *testing.T, path string) (run instruction, env map[string]string) {
	t.Helper()
	env = map[string]string{}
	for _, in := range s.ins {
		switch in.cmd {
		case "ENV":
			for k, v := range in.env() {
				env[k] = v
			}
		case "RUN":
			if strings.Contains(in.args, "go build") {
				return in, env
			}
		}
	}
	t.Fatalf("%s: no RUN … go build in stage %q", path, s.name)
	return
}

// absPath finds absolute paths in a shell command, to move them under the
// directory standing in for the image's root.
var absPath = regexp.MustCompile(`(^|[\s=])(/[\w./-]*)`)

// emulate does what stage does, in root (standing for the image's /),
// with the repository at context: WORKDIR, ENV, COPY (honouring
// .dockerignore) and RUN, with the image's absolute paths moved under root.
func emulate(t *testing.T, s stage, path, context, root string) {
	t.Helper()
	ignore := dockerignore(t, context)
	workdir := "/"
	env := os.Environ()
	for _, in := range s.ins {
		where := fmt.Sprintf("%s:%d", path, in.line)
		switch in.cmd {
		case "WORKDIR":
			workdir = inImage(workdir, in.args)
			if err := os.MkdirAll(filepath.Join(root, workdir), 0o755); err != nil {
				t.Fatal(err)
			}
		case "ENV":
			for k, v := range in.env() {
				env = append(env, k+"="+v)
			}
		case "COPY":
			if _, ok := in.flag("from"); ok {
				t.Fatalf("%s: COPY --from in the build stage: teach this test", where)
			}
			w := strings.Fields(in.args)
			srcs, dst := w[:len(w)-1], inImage(workdir, w[len(w)-1])
			if len(srcs) > 1 && !strings.HasSuffix(w[len(w)-1], "/") {
				t.Fatalf("%s: COPY of several sources needs a destination ending in /", where)
			}
			for _, src := range srcs {
				copyIn(t, where, context, src, filepath.Join(root, dst), strings.HasSuffix(w[len(w)-1], "/"), ignore)
			}
		case "RUN":
			for _, f := range in.flags {
				if !strings.HasPrefix(f, "--mount=type=cache,") {
					t.Fatalf("%s: RUN %s: teach this test", where, f)
				}
			}
			script := absPath.ReplaceAllString(in.args, "${1}"+root+"${2}")
			cmd := exec.Command("sh", "-c", script)
			cmd.Dir = filepath.Join(root, workdir)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: RUN %s: %v\n%s", where, in.args, err, out)
			}
		default:
			t.Fatalf("%s: %s in the build stage: teach this test", where, in.cmd)
		}
	}
}

// inImage resolves p against the working directory, as Docker does.
func inImage(workdir, p string) string {
	if !strings.HasPrefix(p, "/") {
		p = filepath.Join(workdir, p)
	}
	return filepath.Clean(p)
}

func dockerignore(t *testing.T, context string) *patternmatcher.PatternMatcher {
	t.Helper()
	f, err := os.Open(filepath.Join(context, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

// copyIn copies src (relative to context) to dst as COPY does: a
// directory's contents into dst; a file into dst when dst is a directory,
// else as dst. Files .dockerignore excludes are not in the context at all.
func copyIn(t *testing.T, where, context, src, dst string, dstIsDir bool, ignore *patternmatcher.PatternMatcher) {
	t.Helper()
	src = filepath.Clean(src)
	info, err := os.Stat(filepath.Join(context, src))
	if err != nil {
		t.Fatalf("%s: COPY %s: %v", where, src, err)
	}
	copied := 0
	err = filepath.WalkDir(filepath.Join(context, src), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(context, p)
		if excluded, err := ignore.MatchesOrParentMatches(rel); err != nil || excluded {
			return err
		}
		target := dst
		switch {
		case info.IsDir():
			inner, _ := filepath.Rel(filepath.Join(context, src), p)
			target = filepath.Join(dst, inner)
		case dstIsDir:
			target = filepath.Join(dst, filepath.Base(p))
		}
		copied++
		return copyFile(p, target)
	})
	if err != nil {
		t.Fatalf("%s: COPY %s: %v", where, src, err)
	}
	if copied == 0 {
		t.Fatalf("%s: COPY %s: nothing left after .dockerignore", where, src)
	}
}

func copyFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// assertStaticStripped fails unless the binary needs no dynamic loader
// (the runtime image has musl, not the builder's glibc) and carries neither
// a symbol table (-s) nor DWARF (-w). Go does not record -ldflags in a
// -trimpath binary, so the sections are the evidence.
func assertStaticStripped(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked: build with CGO_ENABLED=0", path)
		}
	}
	for _, s := range f.Sections {
		if s.Name == ".symtab" || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("%s has section %s: build with -ldflags=\"-s -w\"", path, s.Name)
		}
	}
}

// startRedis runs a throwaway redis-server on a free port.
func startRedis(t *testing.T) string { return harness.StartRedis(t).Addr }

// serveReady runs argv with exactly env (and PORT), as uid/gid when cred
// is set, until it answers /readyz — checking, while it runs, that it runs
// as that user — then stops it with SIGTERM and expects a clean exit.
func serveReady(t *testing.T, argv, env []string, cred *syscall.Credential) {
	t.Helper()
	port := freePort(t)
	var log strings.Builder
	var cmd *exec.Cmd
	for attempt := 1; ; attempt++ {
		cmd = exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(env, "PORT="+strconv.Itoa(port))
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		cmd.Stdout, cmd.Stderr = &log, &log
		err := cmd.Start()
		if err == nil {
			break
		}
		// The binary was just written: a process another test forked
		// meanwhile can hold it open for writing until it execs, and exec
		// then fails with ETXTBSY (golang/go#22315). Wait for that to pass.
		if !errors.Is(err, syscall.ETXTBSY) || attempt == 20 {
			t.Fatalf("start %s (the image's ENTRYPOINT): %v", argv[0], err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var waitErr error
	exited := make(chan struct{}) // closed once waitErr is set
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		if t.Failed() {
			_ = cmd.Process.Kill()
			<-exited
			t.Logf("%s's log:\n%s", filepath.Base(argv[0]), log.String())
		}
	}()

	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		select {
		case <-exited:
			t.Fatalf("exited before ready: %v", waitErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no 200 within 20s (last: %v)", url, err)
		}
	}
	if cred != nil {
		if uid, gid := processIDs(t, cmd.Process.Pid); uid != cred.Uid || gid != cred.Gid {
			t.Errorf("runs as %d:%d, want the image's USER %d:%d", uid, gid, cred.Uid, cred.Gid)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("after SIGTERM: %v, want exit 0", waitErr)
		}
	case <-time.After(15 * time.Second):
		t.Error("still running 15s after SIGTERM")
	}
}

func freePort(t *testing.T) int { return harness.FreePort(t) }
