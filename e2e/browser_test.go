package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/testkit/tape"
)

// chromiumPath finds Debian's chromium (scripts/ensure-browser.sh installs
// it). Without it the test skips, except in CI, where it must run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and CI=true requires the browser test (scripts/ensure-browser.sh installs it as root)")
	}
	t.Skip("chromium is not installed: skipping the browser test (apt-get install chromium, or run make test as root)")
	return ""
}

// browser starts headless Chromium with the flags this closed network
// needs, and returns a tab's context.
func browser(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.DisableGPU,
		chromedp.NoSandbox,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// Start the browser on ctx itself: the first Do binds the browser's
	// life to its context, and a caller's timeout context would end it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Keep a screenshot of a failed test, where a person can look at it.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Logf("no screenshot: %v", err)
			return
		}
		dir, err := os.MkdirTemp("", "tickwire-browser-")
		if err != nil {
			t.Logf("no screenshot: %v", err)
			return
		}
		name := filepath.Join(dir, "failure.png")
		if err := os.WriteFile(name, png, 0o644); err == nil {
			t.Logf("screenshot of the failure: %s", name)
		}
	})
	return ctx
}

// pageState is what the demo page shows, read from the page itself.
type pageState struct {
	State   string `json:"state"`
	Replica string `json:"replica"`
	Drawn   int    `json:"drawn"`
	Candles int    `json:"candles"` // pixels of the candles' colours on the canvas
	Price   string `json:"price"`
	Rows    int    `json:"rows"`
	Last    string `json:"last"` // last trade:AAPL id in the page's event log
}

const readPage = `(() => {
  const c = document.getElementById('chart');
  let candles = 0;
  if (c.width > 0 && c.height > 0) {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      const up = d[i] === 31 && d[i + 1] === 196 && d[i + 2] === 110;
      const down = d[i] === 255 && d[i + 1] === 79 && d[i + 2] === 97;
      if (up || down) candles++;
    }
  }
  const log = globalThis.tickwireLog && globalThis.tickwireLog.get('trade:AAPL');
  const cell = document.querySelector('#rows td.last');
  return {
    state: globalThis.tickwire ? tickwire.state : '',
    replica: globalThis.tickwire && tickwire.welcome ? tickwire.welcome.replica : '',
    drawn: globalThis.tickwireChart ? tickwireChart.drawn : 0,
    candles,
    price: cell ? cell.textContent : '',
    rows: document.querySelectorAll('#rows tr').length,
    last: log && log.length ? log[log.length - 1] : '',
  };
})()`

func page(t *testing.T, ctx context.Context) pageState {
	t.Helper()
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := chromedp.Run(ectx, chromedp.Evaluate[pageState](readPage))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	return st
}

// TestBrowserDemo loads the demo page in headless Chromium: within 5 s it
// shows live prices and a drawn chart. Then the replica serving it is
// killed, the page's client reconnects to the other replica (the page was
// given both URLs), and its own log of event ids per trade channel is
// compared with Redis's history: no id missing, none twice, across the
// kill.
func TestBrowserDemo(t *testing.T) {
	exe := chromiumPath(t)
	srv := redistest.Start(t)
	startCollector(t, srv, "br")
	// The page comes from pub-1 and connects to pub-2 after the kill:
	// pub-2 must allow pub-1's origin.
	p1, a1 := startPublisher(t, srv.URL(), "br", "pub-1", "PUBLISHER_ALLOWED_ORIGINS=*")
	_, a2 := startPublisher(t, srv.URL(), "br", "pub-2", "PUBLISHER_ALLOWED_ORIGINS=*")
	ctx := browser(t, exe)

	url := fmt.Sprintf("http://%s/?eventlog=1&symbol=AAPL&ws=ws://%s/v1/stream,ws://%s/v1/stream#token=%s", a1, a1, a2, mint(t, "browser"))
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(nctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	loaded := time.Now()
	var st pageState
	poll.Until(t, 5*time.Second, func() error {
		st = page(t, ctx)
		if st.State != "open" || st.Replica != "pub-1" || st.Rows < 2 || !strings.ContainsAny(st.Price, "0123456789") || st.Drawn < 1 || st.Candles < 20 {
			return fmt.Errorf("page not live yet: %+v", st)
		}
		return nil
	})
	t.Logf("page live %v after load: %+v", time.Since(loaded).Round(time.Millisecond), st)

	killed := time.Now()
	p1.signal(syscall.SIGKILL)
	poll.Until(t, 20*time.Second, func() error {
		st = page(t, ctx)
		if st.State != "open" || st.Replica != "pub-2" {
			return fmt.Errorf("not reconnected to pub-2: %+v", st)
		}
		return nil
	})
	t.Logf("reconnected to pub-2 %v after the kill", time.Since(killed).Round(time.Millisecond))

	// Wait until the page has seen an AAPL trade written after the kill
	// was noticed, so that its log spans the kill.
	rdb := srv.Client()
	key := "br:{0}:hist:trade:AAPL"
	latest, err := rdb.XRevRangeN(ctxT(t, 5*time.Second), key, "+", "-", 1).Result()
	if err != nil || len(latest) == 0 {
		t.Fatalf("latest AAPL trade: %v", err)
	}
	target := latest[0].ID
	poll.Until(t, 15*time.Second, func() error {
		st = page(t, ctx)
		if st.Last == "" || tape.Less(st.Last, target) {
			return fmt.Errorf("page's last AAPL trade %q, want %s or later", st.Last, target)
		}
		return nil
	})

	ectx, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	js := `Object.fromEntries([...globalThis.tickwireLog].filter(([ch]) => ch.startsWith('trade:')))`
	logs, err := chromedp.Run(ectx, chromedp.Evaluate[map[string][]string](js))
	if err != nil {
		t.Fatalf("read the page's event log: %v", err)
	}
	for _, ch := range []string{"trade:AAPL", "trade:MSFT"} {
		got := logs[ch]
		if len(got) < 10 {
			t.Fatalf("%s: the page logged %d events", ch, len(got))
		}
		first := got[0]
		if ms := idMs(t, first); ms >= killed.UnixMilli() {
			t.Fatalf("%s: the page's log starts after the kill (%s)", ch, first)
		}
		sameAsHistory(t, rdb, "br:{0}:hist:"+ch, got)
		t.Logf("%s: %d events, contiguous with Redis across the kill", ch, len(got))
	}
}

// TestBrowserOriginRefused: a page whose origin the publisher does not
// allow ends with a clear error, not "connection lost" retried forever.
// The browser sees the 403 of the upgrade only as a failed WebSocket; the
// client finds out why from the CORS headers of /tickwire.js.
func TestBrowserOriginRefused(t *testing.T) {
	exe := chromiumPath(t)
	srv := redistest.Start(t)
	_, page1 := startPublisher(t, srv.URL(), "bo", "pub-page")
	_, strict := startPublisher(t, srv.URL(), "bo", "pub-strict", "PUBLISHER_ALLOWED_ORIGINS=https://app.example")
	ctx := browser(t, exe)
	url := fmt.Sprintf("http://%s/?ws=ws://%s/v1/stream#token=%s", page1, strict, mint(t, "browser"))
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	type refused struct {
		State  string `json:"state"`
		Notice string `json:"notice"`
		Badge  string `json:"badge"`
	}
	var got refused
	poll.Until(t, 20*time.Second, func() error {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		got, err = chromedp.Run(ectx, chromedp.Evaluate[refused](`({
			state: globalThis.tickwire ? tickwire.state : '',
			notice: document.getElementById('gap').hidden ? '' : document.getElementById('gap').textContent,
			badge: document.getElementById('status-text').textContent,
		})`))
		if err != nil {
			return err
		}
		if got.State != "closed" || !strings.Contains(got.Notice, "does not allow") {
			return fmt.Errorf("no origin error yet: %+v", got)
		}
		return nil
	})
	t.Logf("page says: %q / %q", got.Badge, got.Notice)
}

func idMs(t *testing.T, id string) int64 {
	t.Helper()
	var ms int64
	if _, err := fmt.Sscanf(id, "%d-", &ms); err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	return ms
}

// sameAsHistory fails t unless got, a page's log of one channel's ids, is
// exactly the entries of the history key between its first and last id.
func sameAsHistory(t *testing.T, rdb *redis.Client, key string, got []string) {
	t.Helper()
	first, last := got[0], got[len(got)-1]
	entries, err := rdb.XRange(ctxT(t, 5*time.Second), key, first, last).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(entries))
	for i, m := range entries {
		want[i] = m.ID
	}
	if !slices.Equal(got, want) {
		missing, extra := diffIDs(got, want)
		t.Fatalf("%s: the page's events differ from Redis's history between %s and %s: %d logged, %d in Redis; missing %v; not in Redis or twice %v",
			key, first, last, len(got), len(want), missing, extra)
	}
}

// diffIDs returns up to 10 ids of want missing from got, and up to 10 of
// got not in want or repeated.
func diffIDs(got, want []string) (missing, extra []string) {
	seen := make(map[string]int, len(got))
	for _, id := range got {
		seen[id]++
		if seen[id] == 2 && len(extra) < 10 {
			extra = append(extra, id)
		}
	}
	in := make(map[string]bool, len(want))
	for _, id := range want {
		in[id] = true
		if seen[id] == 0 && len(missing) < 10 {
			missing = append(missing, id)
		}
	}
	for _, id := range got {
		if !in[id] && len(extra) < 10 {
			extra = append(extra, id)
		}
	}
	return missing, extra
}
