package e2e

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/testkit/tape"
)

// rediss:// works for both processes against a TLS-only redis-server whose
// CA the processes trust through SSL_CERT_FILE; a publisher that does not
// trust it stays not ready.
func TestRedisTLS(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{TLS: true, RequirePass: "tls-pass"})
	trust := "SSL_CERT_FILE=" + srv.CAFile()
	startCollector(t, srv, "tl", trust)
	_, addr := startPublisher(t, srv.URL(), "tl", "pub-1", trust)
	c := connect(t, addr, "alice")
	c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
	if err := c.Collect(tape.New(t), aapl, 5); err != nil {
		t.Fatal(err)
	}

	untrusting := freeAddr(t)
	p := start(t, "untrusting", "publisher", []string{
		"REDIS_URL=" + srv.URL(), "STREAM_PREFIX=tl", "JWT_SECRET=" + secret,
		"PUBLISHER_ADDR=" + untrusting, "PUBLISHER_REPLICA_ID=pub-2",
	}, nil)
	waitHTTP(t, "http://"+untrusting+"/healthz", http.StatusOK, 15*time.Second)
	poll.Until(t, 15*time.Second, func() error { // it tried, and said why it failed
		if !strings.Contains(p.log.String(), "certificate") {
			return errors.New("no certificate error logged yet")
		}
		return nil
	})
	waitHTTP(t, "http://"+untrusting+"/readyz", http.StatusServiceUnavailable, 5*time.Second)
	if strings.Contains(p.log.String(), "tls-pass") {
		t.Fatal("the log shows the Redis password")
	}
}
