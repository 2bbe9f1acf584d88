package harness

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Nginx is a real nginx (Debian's package; scripts/deps.sh installs it) of
// the test's own, as the load balancer in front of sub instances. It runs
// in the foreground with its prefix, pid, logs and temp files in a temp
// directory, listening on a free loopback port; StartNginx's configuration
// runs it as one process (no master). The proxying itself is
// deploy/nginx/sub.conf, the file the compose cluster profile uses.
type Nginx struct {
	Port int
	URL  string // http://127.0.0.1:port
	Dir  string // prefix: nginx.conf, the logs

	tb   testing.TB
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  *bytes.Buffer
	done chan struct{}
}

// NginxOptions tune the test's nginx. Zero values take the defaults.
type NginxOptions struct {
	// WorkerConnections is nginx's worker_connections: a proxied
	// WebSocket takes two (client and upstream). Default: 4096.
	WorkerConnections int
	// NoFile is worker_rlimit_nofile. Default: 2*WorkerConnections + 64
	// (nginx cannot raise it past the hard limit unless root).
	NoFile int
}

var nginxConf = template.Must(template.New("nginx.conf").Parse(`# written by dev/harness for one test
master_process off;
worker_processes 1;
worker_rlimit_nofile {{.NoFile}};
error_log stderr notice;
pid nginx.pid;
events { worker_connections {{.WorkerConnections}}; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream sub {
        least_conn;
{{- range .Upstreams}}
        server {{.}} max_fails=1 fail_timeout=10s;
{{- end}}
    }
    server {
        listen 127.0.0.1:{{.Port}};
        include {{.SubConf}};
    }
}
`))

// StartNginx starts nginx balancing over subs (at least one) with the
// defaults; see StartNginxWith.
func StartNginx(tb testing.TB, subs ...*Service) *Nginx {
	tb.Helper()
	return StartNginxWith(tb, NginxOptions{}, subs...)
}

// StartNginxWith starts nginx balancing over subs (least connections) and
// waits until it answers; t.Cleanup kills it.
func StartNginxWith(tb testing.TB, opt NginxOptions, subs ...*Service) *Nginx {
	tb.Helper()
	if len(subs) == 0 {
		tb.Fatal("harness: StartNginx needs at least one upstream")
	}
	if opt.WorkerConnections == 0 {
		opt.WorkerConnections = 4096
	}
	if opt.NoFile == 0 {
		opt.NoFile = 2*opt.WorkerConnections + 64
	}
	port := FreePort(tb)
	var ups []string
	for _, s := range subs {
		ups = append(ups, fmt.Sprintf("127.0.0.1:%d", s.Port))
	}
	var conf bytes.Buffer
	if err := nginxConf.Execute(&conf, map[string]any{
		"NoFile": opt.NoFile, "WorkerConnections": opt.WorkerConnections, "Upstreams": ups, "Port": port,
		"SubConf": SubConf(tb),
	}); err != nil {
		tb.Fatal(err)
	}
	return StartNginxConf(tb, conf.String(), port)
}

// SubConf is the absolute path of deploy/nginx/sub.conf.
func SubConf(tb testing.TB) string { return filepath.Join(Root(tb), "deploy", "nginx", "sub.conf") }

// StartNginxConf runs nginx with conf (a whole nginx.conf, without a
// daemon directive; relative paths are under a temp prefix of its own)
// that listens on 127.0.0.1:port, and waits until it accepts there;
// t.Cleanup stops it.
func StartNginxConf(tb testing.TB, conf string, port int) *Nginx {
	tb.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			tb.Fatalf("nginx not found (scripts/deps.sh installs Debian's package; make test runs it): %v", err)
		}
		bin = "/usr/sbin/nginx"
	}
	dir := tb.TempDir()
	// Workers may run as nobody (nginx started as root): they need to
	// reach the prefix's temp directories.
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, d := range []string{"tmp", "temp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			tb.Fatal(err)
		}
	}
	n := &Nginx{Port: port, Dir: dir, tb: tb, log: &bytes.Buffer{}, done: make(chan struct{})}
	n.URL = fmt.Sprintf("http://127.0.0.1:%d", n.Port)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	// -e: the error log before the configuration is read (the compiled-in
	// default is under /var/log, not ours).
	n.cmd = exec.Command(bin, "-p", dir+"/", "-c", confPath, "-e", "stderr", "-g", "daemon off;")
	out := syncBuffer{&n.mu, n.log}
	n.cmd.Stdout, n.cmd.Stderr = out, out
	if err := n.cmd.Start(); err != nil {
		tb.Fatalf("start nginx: %v", err)
	}
	cmd := n.cmd
	go func() { _ = cmd.Wait(); close(n.done) }()
	tb.Cleanup(n.Stop)
	n.waitUp(15 * time.Second)
	return n
}

// waitUp waits until nginx accepts connections on its port.
func (n *Nginx) waitUp(timeout time.Duration) {
	n.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.Port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-n.done:
			n.tb.Fatalf("nginx exited during start:\n%s", n.Log())
		default:
		}
		if time.Now().After(deadline) {
			n.tb.Fatalf("nginx not listening after %s:\n%s", timeout, n.Log())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Stop stops nginx: SIGTERM (a fast shutdown, in which a master also
// ends its workers), SIGKILL after 5s.
func (n *Nginx) Stop() {
	n.mu.Lock()
	cmd := n.cmd
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-n.done
	}
	if n.tb.Failed() {
		n.tb.Logf("nginx log:\n%s", n.Log())
	}
}

// Log is what nginx printed so far (its error log, at notice level).
func (n *Nginx) Log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.String()
}

// WSURL is the GraphQL WebSocket endpoint through nginx.
func (n *Nginx) WSURL() string {
	return strings.Replace(n.URL, "http://", "ws://", 1) + "/graphql"
}

// Get fetches path through nginx and returns the status and body.
func (n *Nginx) Get(path string) (int, string, error) {
	resp, err := httpClient.Get(n.URL + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), err
}
