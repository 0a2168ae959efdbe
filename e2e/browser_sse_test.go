package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
)

// noWebSocketProxy serves target's HTTP through a proxy that refuses every
// WebSocket upgrade, as some corporate proxies do; it streams responses
// (Server-Sent Events) as they come.
func noWebSocketProxy(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "WebSocket is not allowed through this proxy", http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close() // the page's event stream does not end by itself
	})
	return ln.Addr().String()
}

// TestBrowserSSEFallback: behind a proxy that refuses WebSocket, the demo
// page's client (transport 'auto', a real browser's EventSource) finds
// that HTTP works, switches to Server-Sent Events on /v1/sse, and shows
// live prices; its log of trade ids matches Redis's history, none missing
// or twice.
func TestBrowserSSEFallback(t *testing.T) {
	exe := chromiumPath(t)
	srv := redistest.Start(t)
	startCollector(t, srv, "bs")
	_, addr := startPublisher(t, srv.URL(), "bs", "pub-sse", "PUBLISHER_ALLOWED_ORIGINS=*")
	proxy := noWebSocketProxy(t, addr)
	ctx := browser(t, exe)

	url := fmt.Sprintf("http://%s/?eventlog=1&symbol=AAPL&ws=ws://%s/v1/stream#token=%s", proxy, proxy, mint(t, "browser-sse"))
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(nctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	var using string
	var st pageState
	poll.Until(t, 30*time.Second, func() error {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		if using, err = chromedp.Run(ectx, chromedp.Evaluate[string](`globalThis.tickwire ? tickwire.using : ''`)); err != nil {
			return err
		}
		st = page(t, ctx)
		if using != "sse" || st.State != "open" || st.Rows < 2 || !strings.ContainsAny(st.Price, "0123456789") || st.Drawn < 1 {
			return fmt.Errorf("not live over SSE yet: using %q, %+v", using, st)
		}
		return nil
	})
	t.Logf("live over %s: %+v", using, st)

	// Let the page log a few hundred ms of trades, then compare its log
	// with Redis over the span it covers.
	rdb := srv.Client()
	latest, err := rdb.XRevRangeN(ctxT(t, 5*time.Second), "bs:{0}:hist:trade:AAPL", "+", "-", 1).Result()
	if err != nil || len(latest) == 0 {
		t.Fatalf("latest AAPL trade: %v", err)
	}
	target := latest[0].ID
	var got []string
	poll.Until(t, 15*time.Second, func() error {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		got, err = chromedp.Run(ectx, chromedp.Evaluate[[]string](`globalThis.tickwireLog.get('trade:AAPL') || []`))
		if err != nil {
			return err
		}
		if len(got) < 10 || !slices.Contains(got, target) {
			return fmt.Errorf("the page logged %d AAPL trades, not yet %s", len(got), target)
		}
		return nil
	})
	sameAsHistory(t, rdb, "bs:{0}:hist:trade:AAPL", got)
	t.Logf("trade:AAPL: %d events over SSE, the same as Redis's history", len(got))
}
