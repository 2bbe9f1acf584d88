package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// console serialises whole lines from every child onto one writer, each
// prefixed with whose it is.
type console struct {
	mu  sync.Mutex
	out io.Writer
}

func newConsole(out io.Writer) *console { return &console{out: out} }

func (c *console) line(name string, text []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, "[%s] %s\n", name, text)
}

// Printf writes one message, one prefixed line per line of it.
func (c *console) Printf(name, format string, args ...any) {
	for l := range strings.Lines(fmt.Sprintf(format, args...)) {
		c.line(name, []byte(strings.TrimSuffix(l, "\n")))
	}
}

// Raw writes text as it is.
func (c *console) Raw(text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = io.WriteString(c.out, text)
}

// lineWriter cuts a child's output into lines for the console. exec.Cmd
// calls Write from one goroutine at a time when Stdout and Stderr are the
// same writer, so it needs no lock of its own.
type lineWriter struct {
	con  *console
	name string
	buf  []byte
}

const maxLine = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.con.line(w.name, bytes.TrimSuffix(w.buf[:i], []byte("\r")))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxLine {
		w.flush()
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.con.line(w.name, w.buf)
		w.buf = nil
	}
}

// child is one process run starts and stops.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and err is set
	err  error
	stop atomic.Bool // we asked it to stop
}

// startChild starts path with args and the current environment plus env,
// its output forwarded to con; it sends itself on exited when it exits.
func startChild(con *console, name, path string, args, env []string, exited chan<- *child) (*child, error) {
	out := &lineWriter{con: con, name: name}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...) // later entries win
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	con.Printf("run", "started %s (pid %d)", name, cmd.Process.Pid)
	go func() {
		c.err = cmd.Wait()
		out.flush()
		close(c.done)
		exited <- c
	}()
	return c, nil
}

// signal sends sig unless the process has already exited.
func (c *child) signal(sig os.Signal) {
	select {
	case <-c.done:
		return
	default:
	}
	c.stop.Store(true)
	if err := c.cmd.Process.Signal(sig); err != nil {
		_ = c.cmd.Process.Kill()
	}
}

func (c *child) stopping() bool { return c.stop.Load() }
