package fleet

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
)

// Fleet is the coordinator's handle on its worker processes.
type Fleet struct {
	procs []*proc
}

type proc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// Start launches n workers by running exe with args (the binary's hidden
// worker mode); their stderr goes to ours.
func Start(n int, exe string, args ...string) (*Fleet, error) {
	f := &Fleet{}
	for i := 0; i < n; i++ {
		cmd := exec.Command(exe, args...)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fleet: %w", err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fleet: %w", err)
		}
		if err := cmd.Start(); err != nil {
			f.Close()
			return nil, fmt.Errorf("fleet: start worker: %w", err)
		}
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 256<<20)
		f.procs = append(f.procs, &proc{cmd: cmd, in: in, out: sc})
	}
	return f, nil
}

// Len is the number of workers.
func (f *Fleet) Len() int { return len(f.procs) }

// Each sends cmds[i] to worker i (all at once) and returns the replies.
func (f *Fleet) Each(cmds []Command) ([]Reply, error) {
	reps := make([]Reply, len(f.procs))
	errs := make([]error, len(f.procs))
	var wg sync.WaitGroup
	for i, p := range f.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = p.call(cmds[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return reps, fmt.Errorf("fleet: worker %d: %w", i, err)
		}
		if reps[i].Err != "" {
			return reps, fmt.Errorf("fleet: worker %d: %s", i, reps[i].Err)
		}
	}
	return reps, nil
}

// All sends the same command to every worker.
func (f *Fleet) All(cmd Command) ([]Reply, error) {
	cmds := make([]Command, len(f.procs))
	for i := range cmds {
		cmds[i] = cmd
	}
	return f.Each(cmds)
}

func (p *proc) call(cmd Command) (Reply, error) {
	b, err := json.Marshal(cmd)
	if err != nil {
		return Reply{}, err
	}
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		return Reply{}, err
	}
	if !p.out.Scan() {
		if err := p.out.Err(); err != nil {
			return Reply{}, err
		}
		return Reply{}, io.ErrUnexpectedEOF
	}
	var r Reply
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		return Reply{}, fmt.Errorf("bad reply: %w", err)
	}
	return r, nil
}

// Close tells every worker to close its connections and waits for it.
func (f *Fleet) Close() {
	for _, p := range f.procs {
		_ = p.in.Close() // a worker closes everything when stdin ends
	}
	for _, p := range f.procs {
		_ = p.cmd.Wait()
	}
	f.procs = nil
}
