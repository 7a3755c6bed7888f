package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// LogsRequest asks for the output of a server's replicas (tend logs).
type LogsRequest struct {
	Server string
	// Replica is the one replica to read; -1 reads every replica.
	Replica int
	// Tail is how many of the last lines of each replica to write; 0 or
	// less writes all that the provider keeps.
	Tail   int
	Since  time.Time
	Follow bool
	Out    io.Writer
}

// Logs writes the output of a server's replicas through its provider's
// Logger: one replica's as it is, several under a "==> replica N <=="
// header each, or, when following several, each line after "replica N | ".
// Every sensitive value of the server is replaced by "(sensitive)".
// Following ends when ctx ends.
func (e *Engine) Logs(ctx context.Context, cfg *spec.Config, req LogsRequest) error {
	s, ok := cfg.Servers[req.Server]
	if !ok {
		return fmt.Errorf("no server %q in the desired state", req.Server)
	}
	prov, err := e.Registry.Get(cfg, s.Provider, e.ProvEnv)
	if err != nil {
		return err
	}
	_, streams := prov.(providers.LogStreamer)
	lg, tails := prov.(providers.Logger)
	switch {
	case !streams && !tails:
		return fmt.Errorf("the %s provider keeps no output of its replicas", prov.Type())
	case !streams && (req.Follow || !req.Since.IsZero()):
		return fmt.Errorf("the %s provider cannot follow logs or read them since a time: leave out -f and --since", prov.Type())
	}
	resp := prov.Observe(ctx, providers.ObserveRequest{ManagedBy: e.ManagedBy, Server: s.Name})
	if resp.Err != nil {
		return resp.Err
	}
	var insts []providers.Instance
	for _, in := range resp.Instances {
		if in.Server == s.Name && in.Provider == s.Provider && (req.Replica < 0 || in.Replica == req.Replica) {
			insts = append(insts, in)
		}
	}
	sort.Slice(insts, func(i, j int) bool { return insts[i].Replica < insts[j].Replica })
	if len(insts) == 0 {
		if req.Replica >= 0 {
			return fmt.Errorf("%s has no replica %d on %s", s.Name, req.Replica, s.Provider)
		}
		return fmt.Errorf("%s has no replica on %s", s.Name, s.Provider)
	}
	one := func(ctx context.Context, in providers.Instance, w io.Writer) error {
		if !streams {
			out, err := lg.Logs(ctx, in, req.Tail)
			if err != nil {
				return err
			}
			_, err = w.Write(out)
			return err
		}
		return prov.(providers.LogStreamer).StreamLogs(ctx, providers.LogRequest{Instance: in, Tail: req.Tail, Since: req.Since, Follow: req.Follow, Out: w})
	}
	out := &lockedLines{w: req.Out}
	if len(insts) == 1 {
		w := &redactLines{s: s, out: out}
		err := one(ctx, insts[0], w)
		return errors.Join(err, w.Flush())
	}
	if !req.Follow {
		for i, in := range insts {
			if i > 0 {
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "==> replica %d <==\n", in.Replica)
			w := &redactLines{s: s, out: out}
			if err := errors.Join(one(ctx, in, w), w.Flush()); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(insts))
	var wg sync.WaitGroup
	for i, in := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &redactLines{s: s, out: out, prefix: "replica " + strconv.Itoa(in.Replica) + " | "}
			errs[i] = errors.Join(one(ctx, in, w), w.Flush())
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// lockedLines serialises the writes of several replicas' followers.
type lockedLines struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// redactLines writes complete lines, each after prefix and with the
// server's sensitive values replaced (a secret is never cut in two by a
// write boundary).
type redactLines struct {
	s       *spec.Server
	out     io.Writer
	prefix  string
	partial []byte
}

func (r *redactLines) Write(b []byte) (int, error) {
	r.partial = append(r.partial, b...)
	i := bytes.LastIndexByte(r.partial, '\n')
	if i < 0 {
		return len(b), nil
	}
	if err := r.emit(r.partial[:i+1]); err != nil {
		return 0, err
	}
	r.partial = append(r.partial[:0], r.partial[i+1:]...)
	return len(b), nil
}

// Flush writes a last line that has no newline.
func (r *redactLines) Flush() error {
	if len(r.partial) == 0 {
		return nil
	}
	err := r.emit(append(r.partial, '\n'))
	r.partial = nil
	return err
}

func (r *redactLines) emit(lines []byte) error {
	var b bytes.Buffer
	for _, l := range bytes.SplitAfter(lines, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		b.WriteString(r.prefix)
		b.WriteString(redact(r.s, string(l)))
	}
	_, err := r.out.Write(b.Bytes())
	return err
}
