package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tendhq/tend/spec"
)

type execProber struct {
	argv    []spec.Value
	run     ExecFunc
	secrets []string // revealed sensitive arguments, kept out of messages
}

func newExecProber(c *spec.ExecCheck, run ExecFunc) (*execProber, error) {
	if len(c.Command) == 0 {
		return nil, errors.New("exec check has no command")
	}
	if run == nil {
		return nil, errors.New("exec check needs a task runner, and none was given")
	}
	p := &execProber{argv: c.Command, run: run}
	for _, v := range c.Command {
		if v.IsSensitive() {
			p.secrets = append(p.secrets, v.Reveal())
		}
	}
	return p, nil
}

func (p *execProber) Probe(ctx context.Context, t Target) error {
	argv := make([]string, len(p.argv))
	for i, v := range p.argv {
		argv[i] = v.Reveal()
	}
	what := "exec " + p.shown()
	code, out, err := p.run(ctx, t, argv)
	if err != nil || code != 0 {
		// A command killed for running out of time exits with some code;
		// the timeout is the news.
		if e := ranOut(ctx, what); e != nil {
			return e
		}
	}
	if err != nil {
		return failed(ctx, what, errors.New(redact(err.Error(), p.secrets)))
	}
	if code == 0 {
		return nil
	}
	msg := fmt.Sprintf("%s: exit code %d, want 0", what, code)
	if o := strings.TrimRight(string(out), "\n"); o != "" {
		msg += fmt.Sprintf(", output %q", tail([]byte(redact(o, p.secrets))))
	} else {
		msg += ", no output"
	}
	return errors.New(msg)
}

// shown is the command for messages: the program and its plain arguments,
// with sensitive ones as "(sensitive)", shortened when long.
func (p *execProber) shown() string {
	s := strings.Join(spec.Values(p.argv), " ")
	if len(s) > 80 {
		i := 77
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i] + "..."
	}
	return fmt.Sprintf("%q", s)
}
