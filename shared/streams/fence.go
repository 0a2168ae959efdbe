package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// raiseScript raises a shard's fence to a term, unless it is higher
// already. KEYS: the fence. ARGV: term. Returns 0, or the higher fence.
const raiseScript = `
local f = tonumber(redis.call('GET', KEYS[1]) or '0')
if f > tonumber(ARGV[1]) then return f end
redis.call('SET', KEYS[1], ARGV[1])
return 0
`

// raise is sent with its body (EVAL): it runs once per term, and a
// pipeline cannot fall back from EVALSHA on NOSCRIPT.
var raise = redis.NewScript(raiseScript)

// StaleTermError is returned by Fence when a shard's fence is above the
// term: a holder of a later term has written, so this one is not the
// leader any more, or its term was started from a counter that was lost
// (Lease.Acquire's least argument starts a higher one).
type StaleTermError struct {
	Term, Fence int64
}

func (e *StaleTermError) Error() string {
	return fmt.Sprintf("lease term %d is behind a shard's fence %d", e.Term, e.Fence)
}

// Unwrap makes a stale term an ErrNotLeader.
func (e *StaleTermError) Unwrap() error { return ErrNotLeader }

// Fence makes the writer's chunks carry term (a Lease.Acquire term, above
// 0), and raises every shard's fence to it at once, so that the holders
// of earlier terms are refused from now on, not from this writer's first
// write to each shard. It returns a *StaleTermError if a shard's fence is
// higher: the writes would be refused. Safe to call while Write runs.
func (w *Writer) Fence(ctx context.Context, term int64) error {
	if term <= 0 {
		return fmt.Errorf("fence term %d: want above 0", term)
	}
	w.term.Store(term)
	pipe := w.c.Pipeline()
	cmds := make([]*redis.Cmd, w.layout.Shards)
	arg := strconv.FormatInt(term, 10)
	for s := range cmds {
		cmds[s] = raise.Eval(ctx, pipe, []string{w.layout.Fence(s)}, arg)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	var errs []error
	var stale int64
	for s, cmd := range cmds {
		f, err := cmd.Int64()
		if err != nil {
			errs = append(errs, fmt.Errorf("raise fence of shard %d: %w", s, err))
		}
		stale = max(stale, f)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if stale > 0 {
		return &StaleTermError{Term: term, Fence: stale}
	}
	return nil
}
