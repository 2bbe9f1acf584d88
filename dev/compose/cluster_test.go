package compose_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// docker-compose.cluster.yml: three sub replicas behind nginx and a Redis
// Cluster of three masters with a replica each. Docker does not run here,
// so the file is loaded by compose-go (the spec's validation), its shape
// is checked, and its parts are replayed: the nodes' redis-server command
// and the init service's script build a real cluster out of six local
// redis-servers (twice: the second run finds it made), and
// deploy/nginx/nginx.conf runs as the balancer in front of real sub
// instances.

func loadCluster(t *testing.T) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(abs, "docker-compose.cluster.yml")
	opts, err := cli.NewProjectOptions([]string{file}, cli.WithWorkingDirectory(abs), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return p
}

var nodeAddrRE = regexp.MustCompile(`10\.203\.0\.1[1-6]:6379`)

func env(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return ""
}

func TestComposeCluster(t *testing.T) {
	p := loadCluster(t)
	want := []string{"nginx", "pub", "redis-1", "redis-2", "redis-3", "redis-4", "redis-5", "redis-6", "redis-cluster-init", "sub"}
	if got := sorted(p.ServiceNames()); !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	var nodes []string
	for i := 1; i <= 6; i++ {
		s := p.Services[fmt.Sprint("redis-", i)]
		cmd := strings.Join(s.Command, " ")
		for _, w := range []string{"--cluster-enabled yes", "--appendonly yes", "--port 6379"} {
			if !strings.Contains(cmd, w) {
				t.Errorf("%s: command %q lacks %s", s.Name, cmd, w)
			}
		}
		if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
			_, declared := p.Volumes[v.Source]
			return v.Type == types.VolumeTypeVolume && v.Target == "/data" && declared
		}) {
			t.Errorf("%s: volumes %+v, want a named volume at /data", s.Name, s.Volumes)
		}
		n := s.Networks["default"]
		if n == nil || n.Ipv4Address == "" {
			t.Fatalf("%s: no fixed address", s.Name)
		}
		nodes = append(nodes, n.Ipv4Address+":6379")
	}
	init := p.Services["redis-cluster-init"]
	script := strings.Join(init.Command, " ")
	if got := nodeAddrRE.FindAllString(script[strings.Index(script, "--cluster create"):], -1); !slices.Equal(sorted(got), nodes) {
		t.Errorf("init creates the cluster of %v, want the six nodes %v", got, nodes)
	}
	if !strings.Contains(script, "--cluster-replicas 1") {
		t.Error("init: want --cluster-replicas 1 (3 masters, 3 replicas)")
	}
	for i := 1; i <= 6; i++ {
		if d, ok := init.DependsOn[fmt.Sprint("redis-", i)]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("init: depends_on redis-%d %+v, want service_healthy", i, d)
		}
	}
	for _, name := range []string{"pub", "sub"} {
		s := p.Services[name]
		if got := strings.Split(env(s, "REDIS_CLUSTER_ADDRS"), ","); !slices.Equal(sorted(got), nodes) {
			t.Errorf("%s: REDIS_CLUSTER_ADDRS %v, want the six nodes", name, got)
		}
		if d, ok := s.DependsOn["redis-cluster-init"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s: depends_on redis-cluster-init %+v, want service_completed_successfully", name, d)
		}
	}
	sub := p.Services["sub"]
	if sub.Deploy == nil || sub.Deploy.Replicas == nil || *sub.Deploy.Replicas != 3 {
		t.Errorf("sub: deploy %+v, want 3 replicas", sub.Deploy)
	}
	if len(sub.Ports) != 0 {
		t.Errorf("sub: ports %+v; replicas cannot share a host port, clients come through nginx", sub.Ports)
	}
	shutdown, err := time.ParseDuration(env(sub, "SHUTDOWN_TIMEOUT"))
	if err != nil || sub.StopGracePeriod == nil || time.Duration(*sub.StopGracePeriod) <= shutdown {
		t.Errorf("sub: stop_grace_period %v, SHUTDOWN_TIMEOUT %q: docker must wait out the drain", sub.StopGracePeriod, env(sub, "SHUTDOWN_TIMEOUT"))
	}
	ng := p.Services["nginx"]
	if len(ng.Ports) != 1 || ng.Ports[0].Target != 8081 || ng.Ports[0].Published != "8081" {
		t.Errorf("nginx: ports %+v, want 8081:8081 (sub's public port)", ng.Ports)
	}
	mounts := map[string]string{}
	for _, v := range ng.Volumes {
		mounts[v.Target] = v.Source
	}
	abs, _ := filepath.Abs(root)
	if mounts["/etc/nginx/nginx.conf"] != filepath.Join(abs, "deploy/nginx/nginx.conf") ||
		mounts["/etc/nginx/oshirase/sub.conf"] != filepath.Join(abs, "deploy/nginx/sub.conf") {
		t.Errorf("nginx: mounts %v, want deploy/nginx/nginx.conf and sub.conf where nginx.conf includes it", mounts)
	}
	if d, ok := ng.DependsOn["sub"]; !ok || d.Condition != types.ServiceConditionHealthy {
		t.Errorf("nginx: depends_on sub %+v, want service_healthy", d)
	}
	// sub accepts its environment here but for the cluster seeds (no
	// cluster to reach in this test): the drain settings fit.
	var kv []string
	for k, v := range sub.Environment {
		if v != nil && k != "PORT" && k != "REDIS_CLUSTER_ADDRS" {
			kv = append(kv, k+"="+*v)
		}
	}
	harness.StartSub(t, harness.StartRedis(t), kv...)
}

// The nodes' command and the init script, replayed on six local
// redis-servers, make a cluster of three masters with one replica each;
// a second run leaves it as it is.
func TestComposeClusterInitBuildsTheCluster(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli not found (it comes with redis-server; scripts/deps.sh installs it): %v", err)
	}
	p := loadCluster(t)
	replace := map[string]string{}
	var first string
	for i := 1; i <= 6; i++ {
		s := p.Services[fmt.Sprint("redis-", i)]
		port := redistest.FreePort(t)
		args := slices.Clone(s.Command[1:])
		args[slices.Index(args, "--port")+1] = fmt.Sprint(port)
		args = append(args, "--bind", "127.0.0.1", "--dir", t.TempDir(), "--cluster-port", fmt.Sprint(redistest.FreePort(t)))
		startProcess(t, s.Command[0], args...)
		ip := s.Networks["default"].Ipv4Address
		replace[ip+":6379"] = fmt.Sprintf("127.0.0.1:%d", port)
		if i == 1 {
			first = ip
			replace["-h "+ip+" -p 6379"] = fmt.Sprintf("-h 127.0.0.1 -p %d", port)
		}
		eventuallyTrue(t, 10*time.Second, "redis node up", func() bool {
			out, err := exec.Command("redis-cli", "-p", fmt.Sprint(port), "ping").Output()
			return err == nil && strings.TrimSpace(string(out)) == "PONG"
		})
	}
	init := p.Services["redis-cluster-init"].Command
	script := init[len(init)-1]
	for from, to := range replace {
		if !strings.Contains(script, from) {
			t.Fatalf("init script does not contain %q", from)
		}
		script = strings.ReplaceAll(script, from, to)
	}
	if strings.Contains(script, first) {
		t.Fatalf("init script still names %s after the replay's replacements:\n%s", first, script)
	}
	for run := range 2 {
		cmd := exec.Command(init[0], append(slices.Clone(init[1:len(init)-1]), script)...)
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("init run %d did not finish within 60s:\n%s", run+1, out)
		}
		if err != nil {
			t.Fatalf("init run %d: %v\n%s", run+1, err, out)
		}
		if run == 1 && !strings.Contains(string(out), "already created") {
			t.Errorf("second init run did not find the cluster made:\n%s", out)
		}
	}
	// The replicas attach on their own after the create: allow them time.
	host, port, _ := strings.Cut(replace[first+":6379"], ":")
	var nodes string
	masters, replicas := 0, 0
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "nodes").Output()
		if err != nil {
			t.Fatal(err)
		}
		nodes, masters, replicas = string(out), 0, 0
		for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
			f := strings.Fields(line)
			switch {
			case strings.Contains(f[2], "master") && len(f) > 8:
				masters++ // a master with slots
			case strings.Contains(f[2], "slave"):
				replicas++
			}
		}
		if masters == 3 && replicas == 3 || time.Now().After(deadline) {
			break
		}
	}
	if masters != 3 || replicas != 3 {
		t.Fatalf("cluster has %d masters with slots and %d replicas after 20s, want 3 and 3:\n%s", masters, replicas, nodes)
	}
}

// deploy/nginx/nginx.conf, as the nginx service mounts it, balances real
// sub instances: WebSockets through it receive their notices, spread
// over the instances. Only the upstream, the port and the include path
// are changed for the replay.
func TestComposeClusterNginxConf(t *testing.T) {
	abs, _ := filepath.Abs(root)
	b, err := os.ReadFile(filepath.Join(abs, "deploy/nginx/nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	r := harness.StartRedis(t)
	pub := harness.StartPub(t, r)
	subs := []*harness.Service{harness.StartSub(t, r), harness.StartSub(t, r)}
	port := harness.FreePort(t)
	conf := string(b)
	for from, to := range map[string]string{
		"server sub:8081 ":           fmt.Sprintf("server 127.0.0.1:%d ", subs[0].Port),
		"listen 8081;":               fmt.Sprintf("listen 127.0.0.1:%d;", port),
		"include oshirase/sub.conf;": "include " + harness.SubConf(t) + ";",
	} {
		if !strings.Contains(conf, from) {
			t.Fatalf("deploy/nginx/nginx.conf does not contain %q", from)
		}
		conf = strings.ReplaceAll(conf, from, to)
	}
	// Docker's DNS gives "sub" every replica's address; here, a second line.
	conf = strings.Replace(conf, fmt.Sprintf("server 127.0.0.1:%d ", subs[0].Port),
		fmt.Sprintf("server 127.0.0.1:%d max_fails=1 fail_timeout=10s;\n        server 127.0.0.1:%d ", subs[1].Port, subs[0].Port), 1)
	lb := harness.StartNginxConf(t, conf, port)
	var clients []*gqlws.Client
	for range 4 {
		c, err := gqlws.Connect(lb.WSURL(), gqlws.TransportWS, nil)
		if err != nil {
			t.Fatalf("connect through nginx: %v\n%s", err, lb.Log())
		}
		t.Cleanup(c.Close)
		if err := c.Subscribe("1", "compose-lb"); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	pub.WaitReceivers("compose-lb", len(clients))
	if _, err := pub.Send("compose-lb", "through nginx"); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		n, _, err := c.NextNotification(10 * time.Second)
		if err != nil || n.Text != "through nginx" {
			t.Fatalf("client %d: %+v, %v", i, n, err)
		}
	}
	for _, s := range subs {
		if n := subConnections(t, s); n != len(clients)/2 {
			t.Errorf("%s holds %d connections, want %d: least_conn spreads them", s.URL, n, len(clients)/2)
		}
	}
}

// subConnections reads oshirase_sub_connections from s's /metrics.
func subConnections(t *testing.T, s *harness.Service) int {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oshirase_sub_connections "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(f)
		}
	}
	t.Fatalf("%s: no oshirase_sub_connections in /metrics", s.URL)
	return 0
}

func startProcess(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

func eventuallyTrue(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// docker-compose.yml's sub drains on SIGTERM within its default
// SHUTDOWN_TIMEOUT (25s: DRAIN_DELAY 5s + DRAIN_WINDOW 10s + 10s): docker
// must not kill it first (its default stop timeout is 10s).
func TestComposeStopGraceCoversTheDrain(t *testing.T) {
	sub := loadProject(t).Services["sub"]
	if sub.StopGracePeriod == nil || time.Duration(*sub.StopGracePeriod) <= 25*time.Second {
		t.Errorf("sub: stop_grace_period %v, want more than sub's default SHUTDOWN_TIMEOUT (25s)", sub.StopGracePeriod)
	}
}
