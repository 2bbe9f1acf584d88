// Package compose_test checks docker-compose.yml and the Dockerfiles it
// builds without Docker: the compose file through compose-go's loader
// (which validates it against the compose spec), and each Dockerfile by
// doing what its build stage and then its runtime stage do, and running
// the image's ENTRYPOINT as its USER.
package compose_test

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// services are what docker-compose.yml runs from our own images, with the
// port each serves on (the public API since the original design).
var services = map[string]int{"pub": 8080, "sub": 8081}

const root = "../.."

// loadProject loads docker-compose.yml with the override files given, as
// `docker compose -f docker-compose.yml -f …` would.
func loadProject(t *testing.T, overrides ...string) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(abs, "docker-compose.yml")}
	for _, o := range overrides {
		files = append(files, filepath.Join(abs, o))
	}
	opts, err := cli.NewProjectOptions(files, cli.WithWorkingDirectory(abs), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%v: %v", files, err)
	}
	return p
}

func TestCompose(t *testing.T) {
	p := loadProject(t)
	abs, _ := filepath.Abs(root)
	if got, want := p.ServiceNames(), []string{"pub", "redis", "sub"}; !slices.Equal(sorted(got), want) {
		t.Fatalf("services %v, want %v", got, want)
	}

	redis := p.Services["redis"]
	if !strings.HasPrefix(redis.Image, "redis:7") {
		t.Errorf("redis image %q, want redis:7-…", redis.Image)
	}
	if hc := redis.HealthCheck; hc == nil || !slices.Contains(hc.Test, "redis-cli") || !slices.Contains(hc.Test, "ping") {
		t.Errorf("redis healthcheck %v, want redis-cli ping", redis.HealthCheck)
	}
	// The history must survive a restart of Redis: AOF, on a named volume
	// mounted where the image keeps its data.
	if cmd := strings.Join(redis.Command, " "); !strings.Contains(cmd, "--appendonly yes") {
		t.Errorf("redis command %q, want --appendonly yes", cmd)
	}
	if !slices.ContainsFunc(redis.Volumes, func(v types.ServiceVolumeConfig) bool {
		_, declared := p.Volumes[v.Source]
		return v.Type == types.VolumeTypeVolume && v.Target == "/data" && declared
	}) {
		t.Errorf("redis volumes %+v, want a named volume at /data", redis.Volumes)
	}

	for name, port := range services {
		t.Run(name, func(t *testing.T) {
			s := p.Services[name]
			if s.Build == nil {
				t.Fatal("no build section")
			}
			if s.Build.Context != abs {
				t.Errorf("build context %s, want the repository root: the image needs the shared modules (wire/, bus/, service/) too", s.Build.Context)
			}
			if want := name + "/Dockerfile"; s.Build.Dockerfile != want {
				t.Errorf("dockerfile %q, want %q", s.Build.Dockerfile, want)
			}
			if len(s.Ports) != 1 || s.Ports[0].Target != uint32(port) || s.Ports[0].Published != strconv.Itoa(port) {
				t.Errorf("ports %+v, want %d:%d", s.Ports, port, port)
			}
			env := func(k string) string {
				if v := s.Environment[k]; v != nil {
					return *v
				}
				return ""
			}
			if env("PORT") != strconv.Itoa(port) {
				t.Errorf("PORT=%q, want %d", env("PORT"), port)
			}
			if env("REDIS_URL") != "redis:6379" {
				t.Errorf("REDIS_URL=%q, want redis:6379", env("REDIS_URL"))
			}
			if d, ok := s.DependsOn["redis"]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("depends_on redis %+v, want condition service_healthy", d)
			}
			hc := s.HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" || hc.Test[1] != "wget" ||
				!slices.Contains(hc.Test, fmt.Sprintf("http://127.0.0.1:%d/readyz", port)) {
				t.Errorf("healthcheck %+v, want CMD wget … http://127.0.0.1:%d/readyz", hc, port)
			}

			df := parseDockerfile(t, filepath.Join(s.Build.Context, s.Build.Dockerfile))
			_, rt := df.runtime(t)
			if !slices.Contains(rt.expose, port) || rt.env["PORT"] != strconv.Itoa(port) {
				t.Errorf("Dockerfile: EXPOSE %v, ENV PORT=%q; want %d for both", rt.expose, rt.env["PORT"], port)
			}
			if !strings.HasPrefix(df.final().from, "alpine") {
				t.Errorf("runtime image %s: the healthcheck needs alpine's wget", df.final().from)
			}
			if u := df.final().all("USER"); len(u) == 0 || strings.HasPrefix(u[len(u)-1].args, "0") || u[len(u)-1].args == "root" {
				t.Error("runtime stage runs as root: add USER")
			}
		})
	}
}

// TestDockerfileBuilds does what each Dockerfile's build stage does, checks
// the binary is the service built as the Dockerfile says (static,
// trimmed, stripped, without the workspace), then does what the runtime
// stage does and checks that the image's ENTRYPOINT, run as its USER,
// serves /readyz against a real Redis.
func TestDockerfileBuilds(t *testing.T) {
	p := loadProject(t)
	redis := startRedis(t)
	for name := range services {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := p.Services[name]
			path := filepath.Join(s.Build.Context, s.Build.Dockerfile)
			df := parseDockerfile(t, path)
			buildStage, rt := df.runtime(t)
			build := df.stage(t, buildStage)
			if !strings.HasPrefix(build.from, "golang:1.26") {
				t.Errorf("build stage FROM %s, want golang:1.26", build.from)
			}
			run, env := build.goBuild(t, path)
			for _, flag := range []string{"-trimpath", `-ldflags="-s -w"`} {
				if !strings.Contains(run.args, flag) {
					t.Errorf("%s:%d: go build without %s", path, run.line, flag)
				}
			}
			for k, v := range map[string]string{"CGO_ENABLED": "0", "GOWORK": "off"} {
				if env[k] != v {
					t.Errorf("%s: build stage ENV %s=%q, want %s", path, k, env[k], v)
				}
			}
			if len(rt.entrypoint) == 0 {
				t.Errorf("%s: no ENTRYPOINT", path)
			}

			image := t.TempDir() // the build stage's filesystem
			emulate(t, build, path, s.Build.Context, image)
			binary := filepath.Join(image, rt.binary)
			assertStaticStripped(t, binary)
			bi, err := buildinfo.ReadFile(binary)
			if err != nil {
				t.Fatal(err)
			}
			if want := "github.com/oshirase/oshirase/" + name; bi.Path != want {
				t.Errorf("built %s, want %s", bi.Path, want)
			}
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			for k, v := range map[string]string{"-trimpath": "true", "CGO_ENABLED": "0"} {
				if settings[k] != v {
					t.Errorf("binary built with %s=%q, want %q", k, settings[k], v)
				}
			}
			// The runtime stage, replayed: the file COPY puts in the image is
			// what ENTRYPOINT starts, as the image's USER, and it serves.
			argv, imageEnv, cred := emulateRuntime(t, path, rt, image)
			serveReady(t, argv, append(imageEnv, "REDIS_URL="+redis), cred)
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
