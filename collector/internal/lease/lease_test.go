package lease

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/shared/streams"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// nopWriter counts what it is asked to write.
type nopWriter struct{ n int }

func (w *nopWriter) Write(_ context.Context, evs []streams.Pending) (streams.Result, error) {
	w.n += len(evs)
	return streams.Result{Written: len(evs)}, nil
}

// TestKeeperWrite checks each mode of the lease-gated writer.
func TestKeeperWrite(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	newL := func(holder string) (*Keeper, *nopWriter) {
		ls, err := streams.NewLease(rdb, "w:collector:leader", holder, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		w := &nopWriter{}
		return New(ls, w, slog.New(slog.NewTextHandler(io.Discard, nil)), m), w
	}
	evs := streams.PendingOf([]event.Event{{TS: 1}, {TS: 2}})
	write := func(l *Keeper) ([]streams.Pending, error) {
		res, err := l.Write(t.Context(), evs)
		return res.Unwritten, err
	}

	a, aw := newL("a")
	if un, err := write(a); !errors.Is(err, ErrUnknown) || len(un) != 2 {
		t.Errorf("before any renewal: %d unwritten, %v; want 2 and ErrUnknown", len(un), err)
	}
	a.renew(t.Context(), time.Second)
	if un, err := write(a); err != nil || len(un) != 0 || aw.n != 2 {
		t.Errorf("active: %d unwritten, %v, %d written; want all written", len(un), err, aw.n)
	}

	b, bw := newL("b")
	b.renew(t.Context(), time.Second)
	if un, err := write(b); !errors.Is(err, streams.ErrNotLeader) || len(un) != 2 || bw.n != 0 {
		t.Errorf("standby: %d unwritten, %v, %d written; want all refused with ErrNotLeader", len(un), err, bw.n)
	}

	a.mu.Lock()
	a.renewed = time.Now().Add(-time.Minute * 2 / 3)
	a.mu.Unlock()
	if un, err := write(a); !errors.Is(err, streams.ErrNotLeader) || len(un) != 2 || aw.n != 2 {
		t.Errorf("stale lease: %d unwritten, %v, %d written; want all refused with ErrNotLeader", len(un), err, aw.n-2)
	}

	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	a.renew(ctx, time.Second)
	if un, err := write(a); !errors.Is(err, ErrUnknown) || len(un) != 2 {
		t.Errorf("redis down: %d unwritten, %v; want 2 and ErrUnknown", len(un), err)
	}
}
