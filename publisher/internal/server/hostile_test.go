package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"io"
	stdlog "log"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/event"
	"github.com/tickwire/tickwire/shared/obs"
	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/streams"
	"github.com/tickwire/tickwire/testkit/logbuf"
	"github.com/tickwire/tickwire/testkit/tape"
	"github.com/tickwire/tickwire/testkit/wsclient"
)

// Hostile clients: every way a token can be wrong, token renewal, the
// per-connection limits, origins, and a flood of garbage frames. What Redis
// can hand the publisher (poison entries, passwords) is in poison_test.go.

const (
	testIssuer   = "https://idp.example"
	testAudience = "tickwire"
)

// claims are JWT claims as a map, so a test can leave one out or give it
// the wrong type.
type claims map[string]any

// goodClaims are valid for an hour, with the issuer and audience of the
// replicas that check them.
func goodClaims(sub string) claims {
	now := time.Now()
	return claims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "iss": testIssuer, "aud": testAudience}
}

func (c claims) with(k string, v any) claims {
	out := claims{}
	for key, val := range c {
		out[key] = val
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

// signer signs a JWT signing input (header.payload).
type signer func(input []byte) []byte

func hmacSigner(h func() hash.Hash, secret []byte) signer {
	return func(in []byte) []byte {
		m := hmac.New(h, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

func rsaSigner(t *testing.T, key *rsa.PrivateKey, pss bool) signer {
	return func(in []byte) []byte {
		d := sha256.Sum256(in)
		var sig []byte
		var err error
		if pss {
			sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, d[:], nil)
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
		}
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

// ecSigner signs ES256: r and s, 32 bytes each (RFC 7518 §3.4).
func ecSigner(t *testing.T, key *ecdsa.PrivateKey) signer {
	return func(in []byte) []byte {
		d := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	}
}

var b64 = base64.RawURLEncoding

// jwtRaw builds a token from header and payload JSON as given: the tests
// need tokens no library would mint. A nil sign leaves the signature empty.
func jwtRaw(header, payload string, sign signer) string {
	in := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	if sign == nil {
		return in + "."
	}
	return in + "." + b64.EncodeToString(sign([]byte(in)))
}

func jwtOf(alg string, c claims, sign signer) string {
	p, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return jwtRaw(`{"alg":"`+alg+`","typ":"JWT"}`, string(p), sign)
}

// writePublicKey writes pub as a PEM file for JWT_PUBLIC_KEY_FILE and
// returns the path and the PEM.
func writePublicKey(t *testing.T, pub any) (string, []byte) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	path := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, pemBytes
}

// assertNoToken fails if text quotes the token or a long part of it.
func assertNoToken(t *testing.T, where, text, tok string) {
	t.Helper()
	parts := append(strings.Split(tok, "."), tok)
	for _, p := range parts {
		if len(p) >= 8 && strings.Contains(text, p) {
			t.Fatalf("%s quotes the token (or part of it): %s", where, text)
		}
	}
}

// upgradeWith dials with tok in the query ("query") or the Authorization
// header ("header"); hdr adds headers.
func upgradeWith(r *replica, how, tok string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	if hdr == nil {
		hdr = http.Header{}
	}
	switch how {
	case "query":
		return websocketDial(wsURL(r, "access_token="+url.QueryEscape(tok)), hdr)
	case "header":
		hdr.Set("Authorization", "Bearer "+tok)
		return websocketDial(wsURL(r, ""), hdr)
	}
	panic("how: " + how)
}

// expectRefusedUpgrade checks a refused upgrade: HTTP status, a JSON body
// with code, and no trace of the token.
func expectRefusedUpgrade(t *testing.T, ws *websocket.Conn, resp *http.Response, err error, status int, code, tok string) {
	t.Helper()
	if err == nil {
		_ = ws.Close()
		t.Fatalf("upgrade accepted, want HTTP %d", status)
	}
	if resp == nil || resp.StatusCode != status {
		t.Fatalf("upgrade: %v, response %v; want HTTP %d", err, resp, status)
	}
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json (body %s)", ct, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	if m["code"] != code || m["message"] == "" || m["message"] == nil {
		t.Fatalf("body %s, want code %q and a message", body, code)
	}
	if tok != "" {
		assertNoToken(t, "HTTP body", string(body), tok)
	}
}

// wrap turns a dialed connection into a test client of t.
func wrap(t *testing.T, ws *websocket.Conn) *client {
	t.Cleanup(func() { _ = ws.Close() })
	return newClient(t, ws)
}

// readRaw reads the next frame and keeps its bytes.
func (c *client) readRaw() (frame, []byte) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		c.t.Fatalf("frame %q: %v", data, err)
	}
	return f, data
}

func (c *client) ping(id string) {
	c.t.Helper()
	c.Send(map[string]string{"op": "ping", "id": id})
	if f := c.Read(); f.Type != "pong" || f.ID != id {
		c.t.Fatalf("got %+v, want pong %s", f, id)
	}
}

// tokenCase is a token and the replica it is presented to; expired when
// expiry is its only fault.
type tokenCase struct {
	name    string
	r       *replica
	tok     string
	expired bool
}

// expectRefusedFrame checks a refusal after the upgrade: an error frame
// with code (and id), no trace of the token, then close 4001.
func expectRefusedFrame(t *testing.T, c *client, id, code, tok string) {
	t.Helper()
	f, raw := c.readRaw()
	if f.Type != "error" || f.Code != code || f.ID != id || f.Message == "" {
		t.Fatalf("got %s, want an error frame %s with id %q and a message", raw, code, id)
	}
	assertNoToken(t, "error frame", string(raw), tok)
	if got := c.CloseCode(); got != 4001 {
		t.Fatalf("close code %d, want 4001", got)
	}
}

// tokenReplicas are three replicas sharing one Redis, one per way of
// verifying, and the keys of the public-key ones.
type tokenReplicas struct {
	hs *replica // HS256, with JWT_ISSUER and JWT_AUDIENCE
	rs *replica // RS256 only: JWT_PUBLIC_KEY_FILE, no JWT_SECRET
	es *replica // ES256 only

	rsaKey, otherRSA *rsa.PrivateKey
	ecKey, otherEC   *ecdsa.PrivateKey
	rsaPEM, rsaDER   []byte // the public key as in the file, and as DER
	ecPEM            []byte
}

func startTokenReplicas(t *testing.T) *tokenReplicas {
	t.Helper()
	tr := &tokenReplicas{}
	var err error
	for _, k := range []**rsa.PrivateKey{&tr.rsaKey, &tr.otherRSA} {
		if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []**ecdsa.PrivateKey{&tr.ecKey, &tr.otherEC} {
		if *k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	rsaFile, rsaPEM := writePublicKey(t, &tr.rsaKey.PublicKey)
	ecFile, ecPEM := writePublicKey(t, &tr.ecKey.PublicKey)
	tr.rsaPEM, tr.ecPEM = rsaPEM, ecPEM
	tr.rsaDER, _ = x509.MarshalPKIXPublicKey(&tr.rsaKey.PublicKey)

	e := newEnv(t, 1)
	tr.hs = e.startReplica("pub-hs", func(c *Config) { c.JWTIssuer, c.JWTAudience = testIssuer, testAudience })
	tr.rs = e.startReplica("pub-rs", func(c *Config) { c.JWTSecret, c.JWTPublicKeyFile = "", rsaFile })
	tr.es = e.startReplica("pub-es", func(c *Config) { c.JWTSecret, c.JWTPublicKeyFile = "", ecFile })
	return tr
}

// Every bad token is refused on all three paths as docs/protocol.md v1.1 says:
// HTTP 401 with a JSON body for the Authorization header; for the
// access_token query parameter and the first auth frame, an error frame
// and close 4001 after the upgrade, so a browser can read why. A token
// whose only fault is its expiry gets token_expired, any other
// unauthorized. No answer quotes the token.
func TestBadTokensRefused(t *testing.T) {
	tr := startTokenReplicas(t)
	cases := badTokenCases(t, tr)
	hs := hmacSigner(sha256.New, []byte(testSecret))
	rs, es := rsaSigner(t, tr.rsaKey, false), ecSigner(t, tr.ecKey)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := "unauthorized"
			if tc.expired {
				code = "token_expired"
			}
			ws, resp, err := upgradeWith(tc.r, "header", tc.tok, nil)
			expectRefusedUpgrade(t, ws, resp, err, http.StatusUnauthorized, code, tc.tok)

			ws, resp, err = upgradeWith(tc.r, "query", tc.tok, nil)
			if err != nil {
				t.Fatalf("query token: upgrade refused (%v, %v), want error frame and 4001 after it", err, resp)
			}
			expectRefusedFrame(t, wrap(t, ws), "", code, tc.tok)

			c := dial(t, tc.r, "")
			c.Send(map[string]string{"op": "auth", "id": "a1", "token": tc.tok})
			expectRefusedFrame(t, c, "a1", code, tc.tok)
		})
	}

	// The same tokens done right are accepted on every path, so the cases
	// above fail for the reason their name says.
	good := []struct {
		name, sub string
		r         *replica
		tok       string
	}{
		{"HS256 with iss and aud", "hs-user", tr.hs, jwtOf("HS256", goodClaims("hs-user"), hs)},
		{"HS256 with aud in a list", "hs-list", tr.hs, jwtOf("HS256", goodClaims("hs-list").with("aud", []string{"x", testAudience}), hs)},
		{"RS256", "rs-user", tr.rs, jwtOf("RS256", goodClaims("rs-user"), rs)},
		{"ES256", "es-user", tr.es, jwtOf("ES256", goodClaims("es-user"), es)},
		{"RS256 with channels", "rs-ch", tr.rs, jwtOf("RS256", goodClaims("rs-ch").with("channels", []string{"trade:*"}), rs)},
	}
	for _, tc := range good {
		t.Run("accepted/"+tc.name, func(t *testing.T) {
			for _, how := range []string{"query", "header"} {
				ws, resp, err := upgradeWith(tc.r, how, tc.tok, nil)
				if err != nil {
					t.Fatalf("%s: %v (%v)", how, err, resp)
				}
				if f := wrap(t, ws).Read(); f.Type != "welcome" || f.User != tc.sub {
					t.Fatalf("%s: got %+v, want welcome for %s", how, f, tc.sub)
				}
			}
			c := dial(t, tc.r, "")
			c.Send(map[string]string{"op": "auth", "token": tc.tok})
			if f := c.Read(); f.Type != "welcome" || f.User != tc.sub {
				t.Fatalf("auth frame: got %+v, want welcome for %s", f, tc.sub)
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// badTokenCases are tokens wrong in one way each, with the replica each is
// presented to.
func badTokenCases(t *testing.T, tr *tokenReplicas) []tokenCase {
	hs := hmacSigner(sha256.New, []byte(testSecret))
	g := goodClaims("mallory")
	now := time.Now()
	rs, es := rsaSigner(t, tr.rsaKey, false), ecSigner(t, tr.ecKey)
	cases := []tokenCase{
		{"garbage", tr.hs, "garbage", false},
		{"three empty parts", tr.hs, "..", false},
		{"dots and junk", tr.hs, "a.b.c", false},
		{"not base64", tr.hs, "!!!.@@@.###", false},
		{"header not JSON", tr.hs, jwtRaw(`{"alg":"HS256"`, `{"sub":"x"}`, hs), false},
		{"payload not JSON", tr.hs, jwtRaw(`{"alg":"HS256","typ":"JWT"}`, `sub=x`, hs), false},
		{"payload a JSON array", tr.hs, jwtRaw(`{"alg":"HS256","typ":"JWT"}`, `[1,2]`, hs), false},
		{"huge garbage", tr.hs, strings.Repeat("A", 6000) + "." + strings.Repeat("B", 6000) + ".C", false},
		{"wrong secret", tr.hs, jwtOf("HS256", g, hmacSigner(sha256.New, []byte("not-the-secret"))), false},
		{"signature stripped", tr.hs, jwtOf("HS256", g, nil), false},
		{"payload swapped under a good signature", tr.hs, func() string {
			good := strings.Split(jwtOf("HS256", g, hs), ".")
			evil, _ := json.Marshal(g.with("sub", "admin"))
			return good[0] + "." + b64.EncodeToString(evil) + "." + good[2]
		}(), false},
		{"expired beyond leeway", tr.hs, jwtOf("HS256", g.with("exp", now.Add(-time.Minute).Unix()), hs), true},
		{"expired just beyond leeway", tr.hs, jwtOf("HS256", g.with("exp", now.Add(-8*time.Second).Unix()), hs), true},
		{"expired and wrong iss", tr.hs, jwtOf("HS256", g.with("exp", now.Add(-time.Minute).Unix()).with("iss", "https://evil.example"), hs), false},
		{"expired and wrong secret", tr.hs, jwtOf("HS256", g.with("exp", now.Add(-time.Minute).Unix()), hmacSigner(sha256.New, []byte("not-the-secret"))), false},
		{"exp as a string of digits", tr.hs, jwtOf("HS256", g.with("exp", fmt.Sprint(now.Add(time.Hour).Unix())), hs), false},
		{"crit header", tr.hs, jwtRaw(`{"alg":"HS256","typ":"JWT","crit":["http://example.invalid/x"],"http://example.invalid/x":1}`, mustJSON(g), hs), false},
		{"not yet valid", tr.hs, jwtOf("HS256", g.with("nbf", now.Add(time.Minute).Unix()), hs), false},
		{"iat in the future", tr.hs, jwtOf("HS256", g.with("iat", now.Add(time.Minute).Unix()), hs), false},
		{"missing sub", tr.hs, jwtOf("HS256", g.with("sub", nil), hs), false},
		{"empty sub", tr.hs, jwtOf("HS256", g.with("sub", ""), hs), false},
		{"sub not a string", tr.hs, jwtOf("HS256", g.with("sub", 42), hs), false},
		{"missing exp", tr.hs, jwtOf("HS256", g.with("exp", nil), hs), false},
		{"exp not a number", tr.hs, jwtOf("HS256", g.with("exp", "tomorrow"), hs), false},
		{"exp overflowing", tr.hs, jwtOf("HS256", g.with("exp", 1e300), hs), false},
		{"alg none", tr.hs, jwtOf("none", g, nil), false},
		{"alg None", tr.hs, jwtOf("None", g, nil), false},
		{"alg NONE with a signature", tr.hs, jwtOf("NONE", g, hs), false},
		{"alg missing", tr.hs, jwtRaw(`{"typ":"JWT"}`, mustJSON(g), hs), false},
		{"HS384 with the right secret", tr.hs, jwtOf("HS384", g, hmacSigner(sha512.New384, []byte(testSecret))), false},
		{"HS512 with the right secret", tr.hs, jwtOf("HS512", g, hmacSigner(sha512.New, []byte(testSecret))), false},
		{"RS256 to an HS256 replica", tr.hs, jwtOf("RS256", g, rs), false},
		{"wrong iss", tr.hs, jwtOf("HS256", g.with("iss", "https://evil.example"), hs), false},
		{"missing iss", tr.hs, jwtOf("HS256", g.with("iss", nil), hs), false},
		{"wrong aud", tr.hs, jwtOf("HS256", g.with("aud", "someone-else"), hs), false},
		{"aud list without ours", tr.hs, jwtOf("HS256", g.with("aud", []string{"a", "b"}), hs), false},
		{"missing aud", tr.hs, jwtOf("HS256", g.with("aud", nil), hs), false},
		{"channels claim invalid pattern", tr.hs, jwtOf("HS256", g.with("channels", []string{"trade:*", "nope:X"}), hs), false},
		{"channels claim not an array", tr.hs, jwtOf("HS256", g.with("channels", "trade:*"), hs), false},
		{"channels claim of numbers", tr.hs, jwtOf("HS256", g.with("channels", []int{1, 2}), hs), false},
		{"channels claim with a wildcard kind", tr.hs, jwtOf("HS256", g.with("channels", []string{"*:AAPL"}), hs), false},

		{"HS256 signed with the RSA public key PEM", tr.rs, jwtOf("HS256", g, hmacSigner(sha256.New, tr.rsaPEM)), false},
		{"HS256 signed with the RSA public key DER", tr.rs, jwtOf("HS256", g, hmacSigner(sha256.New, tr.rsaDER)), false},
		{"RS256 signed by another key", tr.rs, jwtOf("RS256", g, rsaSigner(t, tr.otherRSA, false)), false},
		{"PS256 with the right key", tr.rs, jwtOf("PS256", g, rsaSigner(t, tr.rsaKey, true)), false},
		{"RS384 header on an RS256 signature", tr.rs, jwtOf("RS384", g, rs), false},
		{"ES256 to an RS256 replica", tr.rs, jwtOf("ES256", g, es), false},
		{"alg none to an RS256 replica", tr.rs, jwtOf("none", g, nil), false},
		{"RS256 expired", tr.rs, jwtOf("RS256", g.with("exp", now.Add(-time.Minute).Unix()), rs), true},

		{"HS256 signed with the EC public key PEM", tr.es, jwtOf("HS256", g, hmacSigner(sha256.New, tr.ecPEM)), false},
		{"ES256 signed by another key", tr.es, jwtOf("ES256", g, ecSigner(t, tr.otherEC)), false},
		{"ES256 signature truncated", tr.es, func() string {
			tok := jwtOf("ES256", g, es)
			return tok[:len(tok)-10]
		}(), false},
		{"RS256 to an ES256 replica", tr.es, jwtOf("RS256", g, rs), false},
		{"ES384 header on an ES256 signature", tr.es, jwtOf("ES384", g, es), false},
	}
	return cases
}

// The Authorization header: other credentials are refused without being
// quoted, the header is preferred to the query, and the scheme name is
// case-insensitive (RFC 7235 §2.1).
func TestAuthorizationHeaderSchemes(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil)
	good := token(t, "alice", time.Hour)
	t.Run("basic credentials refused", func(t *testing.T) {
		hdr := http.Header{"Authorization": {"Basic YWxpY2U6czNjcjN0LXBhc3N3b3Jk"}}
		ws, resp, err := websocketDial(wsURL(r, ""), hdr)
		expectRefusedUpgrade(t, ws, resp, err, http.StatusUnauthorized, "unauthorized", "YWxpY2U6czNjcjN0LXBhc3N3b3Jk")
	})
	t.Run("header wins over the query", func(t *testing.T) {
		hdr := http.Header{"Authorization": {"Bearer garbage"}}
		ws, resp, err := websocketDial(wsURL(r, "access_token="+good), hdr)
		expectRefusedUpgrade(t, ws, resp, err, http.StatusUnauthorized, "unauthorized", "garbage")
	})
	t.Run("lower-case bearer", func(t *testing.T) {
		ws, resp, err := websocketDial(wsURL(r, ""), http.Header{"Authorization": {"bearer " + good}})
		if err != nil {
			t.Fatalf("%v (%v)", err, resp)
		}
		if f := wrap(t, ws).Read(); f.Type != "welcome" {
			t.Fatalf("got %+v, want welcome", f)
		}
	})
}

// tokenExp reads the exp claim of a token minted by the tests.
func tokenExp(t *testing.T, tok string) time.Time {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := b64.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Exp int64 }
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return time.Unix(c.Exp, 0)
}

// readUntilError reads frames until an error frame, failing on a welcome
// (no renewal was expected).
func (c *client) readUntilError() frame {
	c.t.Helper()
	for {
		f := c.Read()
		switch f.Type {
		case "error":
			return f
		case "welcome":
			c.t.Fatalf("unexpected welcome %+v", f)
		}
	}
}

func TestTokenRenewal(t *testing.T) {
	const leeway = 1500 * time.Millisecond // short: tests here wait for expiries
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) { c.JWTLeeway = leeway })

	t.Run("same sub before expiry outlives the first token", func(t *testing.T) {
		first := token(t, "alice", 2*time.Second)
		exp := tokenExp(t, first)
		c := dial(t, r, first)
		control := dial(t, r, token(t, "alice-control", 2*time.Second))
		for _, cl := range []*client{c, control} {
			if f := cl.Read(); f.Type != "welcome" {
				t.Fatalf("got %+v, want welcome", f)
			}
		}
		c.Send(map[string]string{"op": "auth", "id": "renew", "token": token(t, "alice", time.Hour)})
		if f := c.Read(); f.Type != "welcome" || f.ID != "renew" || f.User != "alice" {
			t.Fatalf("renewal answered %+v, want welcome renew", f)
		}
		// The control, not renewed, expires: the premise of the test.
		if f := control.readUntilError(); f.Code != "token_expired" {
			t.Fatalf("control got %+v, want token_expired", f)
		}
		if code := control.CloseCode(); code != 4001 {
			t.Fatalf("control closed %d, want 4001", code)
		}
		// Keep talking, a ping every 100 ms (under the rate limit), until
		// well past the first token's exp, leeway included.
		n, last := 0, time.Time{}
		poll.Until(t, 15*time.Second, func() error {
			if time.Since(last) >= 100*time.Millisecond {
				n++
				c.ping(fmt.Sprint("p", n))
				last = time.Now()
			}
			if time.Now().Before(exp.Add(leeway + 500*time.Millisecond)) {
				return errNotYet("first token not expired yet")
			}
			return nil
		})
		c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
		e.write("trade:AAPL", 1)
		c.collect(tape.New(t), "trade:AAPL", 1)
	})

	t.Run("narrower channels unsubscribe", func(t *testing.T) {
		c := dialAuthed(t, r, "bob")
		c.Subscribe(map[string]any{"channels": []string{"trade:AAPL", "trade:MSFT", "quote:*", "bar:IBM"}, "snapshot": false})
		c.Send(map[string]string{"op": "auth", "id": "narrow", "token": token(t, "bob", time.Hour, "trade:AAPL", "bar:*")})
		if f := c.Read(); f.Type != "welcome" || f.ID != "narrow" {
			t.Fatalf("got %+v, want welcome narrow", f)
		}
		u := c.Read()
		slices.Sort(u.Channels)
		if u.Type != "unsubscribed" || !slices.Equal(u.Channels, []string{"quote:*", "trade:MSFT"}) {
			t.Fatalf("got %+v, want unsubscribed [quote:* trade:MSFT]", u)
		}
		// Events of the dropped channels go first: had they been delivered,
		// they would arrive before the ones awaited.
		e.write("trade:MSFT", 1)
		e.write("quote:XYZ", 2)
		e.write("trade:AAPL", 3)
		e.write("bar:IBM", 4)
		tp := tape.New(t)
		c.collect(tp, "trade:AAPL", 1)
		c.collect(tp, "bar:IBM", 1)
		for _, ch := range tp.Channels() {
			if ch != "trade:AAPL" && ch != "bar:IBM" {
				t.Fatalf("event of %s after it was dropped: %v", ch, tp.IDs(ch))
			}
		}
		c.Send(map[string]any{"op": "subscribe", "id": "again", "channels": []string{"trade:MSFT"}})
		if f := c.Read(); f.Type != "error" || f.Code != "forbidden" {
			t.Fatalf("got %+v, want forbidden", f)
		}
	})

	t.Run("wider channels allow more", func(t *testing.T) {
		c := dial(t, r, token(t, "dora", time.Hour, "trade:AAPL"))
		c.Read()
		c.Send(map[string]any{"op": "subscribe", "channels": []string{"quote:AAPL"}})
		if f := c.Read(); f.Code != "forbidden" {
			t.Fatalf("got %+v, want forbidden", f)
		}
		c.Send(map[string]string{"op": "auth", "token": token(t, "dora", time.Hour)})
		if f := c.Read(); f.Type != "welcome" {
			t.Fatalf("got %+v, want welcome", f)
		}
		c.Subscribe(map[string]any{"channels": []string{"quote:AAPL"}})
	})

	t.Run("other sub refused, old token stays in force", func(t *testing.T) {
		c := dial(t, r, token(t, "carol", 2*time.Second))
		c.Read()
		c.Subscribe(map[string]any{"channels": []string{"trade:CRL"}, "snapshot": false})
		c.Send(map[string]string{"op": "auth", "id": "x", "token": token(t, "mallory", time.Hour)})
		if f := c.Read(); f.Type != "error" || f.Code != "unauthorized" || f.ID != "x" {
			t.Fatalf("got %+v, want unauthorized x", f)
		}
		c.ping("after")
		e.write("trade:CRL", 1)
		c.collect(tape.New(t), "trade:CRL", 1)
		// mallory's token did not extend carol's.
		if f := c.readUntilError(); f.Code != "token_expired" {
			t.Fatalf("got %+v, want token_expired", f)
		}
		if code := c.CloseCode(); code != 4001 {
			t.Fatalf("close code %d, want 4001", code)
		}
	})

	t.Run("failed renewals keep the connection", func(t *testing.T) {
		for _, tc := range []struct {
			name, frame, code string
		}{
			{"garbage token", `{"op":"auth","id":"r","token":"garbage"}`, "unauthorized"},
			{"expired token", `{"op":"auth","id":"r","token":"` + token(t, "erin", -time.Minute) + `"}`, "token_expired"},
			{"alg none", `{"op":"auth","id":"r","token":"` + jwtOf("none", goodClaims("erin"), nil) + `"}`, "unauthorized"},
			{"no token", `{"op":"auth","id":"r"}`, "bad_request"},
			{"token not a string", `{"op":"auth","id":"r","token":{"sub":"erin"}}`, "bad_request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := dialAuthed(t, r, "erin")
				c.SendRaw(tc.frame)
				f, raw := c.readRaw()
				if f.Type != "error" || f.Code != tc.code || f.ID != "r" {
					t.Fatalf("got %s, want error %s r", raw, tc.code)
				}
				c.ping("still")
			})
		}
	})

	t.Run("exp within leeway is not cut on the spot", func(t *testing.T) {
		c := dial(t, r, token(t, "frank", -time.Millisecond)) // exp rounds down: at most 1 s ago
		if f := c.Read(); f.Type != "welcome" {
			t.Fatalf("got %+v, want welcome", f)
		}
		c.ping("p")
	})
}

// pumped reads a client in the background, for tests that send while the
// server answers.
type pumped struct {
	frame frame
	raw   []byte
	err   error
}

func (c *client) pump() <-chan pumped {
	out := make(chan pumped, 4096)
	done := make(chan struct{})
	c.t.Cleanup(func() { close(done) }) // runs before the socket's close
	go func() {
		defer close(out)
		for {
			_ = c.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, data, err := c.ws.ReadMessage()
			p := pumped{raw: data, err: err}
			if err == nil {
				_ = json.Unmarshal(data, &p.frame)
			}
			select {
			case out <- p:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out
}

func TestFrameLimits(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) { c.AuthTimeout = time.Second })
	// padded returns a ping frame of exactly n bytes.
	padded := func(n int) string {
		head := `{"op":"ping","id":"big","pad":"`
		return head + strings.Repeat("x", n-len(head)-2) + `"}`
	}

	t.Run("64 KiB is allowed", func(t *testing.T) {
		c := dialAuthed(t, r, "alice")
		c.SendRaw(padded(64 << 10))
		if f := c.Read(); f.Type != "pong" || f.ID != "big" {
			t.Fatalf("got %+v, want pong", f)
		}
	})
	for _, authed := range []bool{true, false} {
		t.Run(fmt.Sprintf("64 KiB + 1 closes 1009 (authenticated %v)", authed), func(t *testing.T) {
			c := dial(t, r, "")
			if authed {
				c = dialAuthed(t, r, "bob")
			}
			c.SendRaw(padded(64<<10 + 1))
			if code := c.CloseCode(); code != 1009 {
				t.Fatalf("close code %d, want 1009", code)
			}
		})
	}
	t.Run("binary frame", func(t *testing.T) {
		c := dialAuthed(t, r, "carol")
		if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"op":"ping","id":"bin"}`)); err != nil {
			t.Fatal(err)
		}
		if f := c.Read(); f.Type != "error" || f.Code != "bad_request" {
			t.Fatalf("got %+v, want bad_request", f)
		}
		c.ping("text")
	})
	t.Run("binary frame before auth", func(t *testing.T) {
		c := dial(t, r, "")
		if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"op":"auth"}`)); err != nil {
			t.Fatal(err)
		}
		if f := c.Read(); f.Type != "error" || f.Code != "unauthorized" {
			t.Fatalf("got %+v, want unauthorized", f)
		}
		if code := c.CloseCode(); code != 4001 {
			t.Fatalf("close code %d, want 4001", code)
		}
	})
	t.Run("invalid UTF-8 echoed as valid UTF-8", func(t *testing.T) {
		c := dialAuthed(t, r, "dave")
		c.SendRaw("{\"op\":\"ping\",\"id\":\"a\xff\xfeb\"}")
		f, raw := c.readRaw()
		if f.Type != "pong" || !utf8.Valid(raw) {
			t.Fatalf("got %q, want a pong in valid UTF-8", raw)
		}
	})
	t.Run("stalled frame before auth is cut at the auth timeout", func(t *testing.T) {
		c := dial(t, r, "")
		// A masked text frame header announcing 1000 bytes, and 10 of them.
		hdr := []byte{0x81, 0x80 | 126, 0x03, 0xe8, 1, 2, 3, 4}
		if _, err := c.ws.UnderlyingConn().Write(append(hdr, bytes.Repeat([]byte{'x'}, 10)...)); err != nil {
			t.Fatal(err)
		}
		if f := c.Read(); f.Type != "error" || f.Code != "unauthorized" {
			t.Fatalf("got %+v, want unauthorized", f)
		}
		if code := c.CloseCode(); code != 4001 {
			t.Fatalf("close code %d, want 4001", code)
		}
	})
}

func TestChannelLimits(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", nil) // MaxChannels 1000
	distinct := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("bar:S%d", i)
		}
		return out
	}
	t.Run("over the limit in one frame", func(t *testing.T) {
		c := dialAuthed(t, r, "alice")
		c.Send(map[string]any{"op": "subscribe", "id": "s", "channels": distinct(1001)})
		f := c.Read()
		if f.Type != "error" || f.Code != "too_many_channels" || len(f.Channels) != 1001 {
			t.Fatalf("got %s %s with %d channels, want too_many_channels listing 1001", f.Type, f.Code, len(f.Channels))
		}
		c.ping("ok")
		c.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
	})
	t.Run("many more than the limit", func(t *testing.T) {
		c := dialAuthed(t, r, "bob")
		c.Send(map[string]any{"op": "subscribe", "channels": distinct(5000)})
		if f := c.Read(); f.Code != "too_many_channels" {
			t.Fatalf("got %+v, want too_many_channels", f.Code)
		}
		c.ping("ok")
	})
	t.Run("up to the limit, then one more", func(t *testing.T) {
		c := dialAuthed(t, r, "carol")
		sub := c.Subscribe(map[string]any{"channels": distinct(1000), "snapshot": false})
		if len(sub.Channels) != 1000 {
			t.Fatalf("subscribed %d channels", len(sub.Channels))
		}
		c.Send(map[string]any{"op": "subscribe", "channels": []string{"bar:S0", "trade:ONEMORE"}})
		if f := c.Read(); f.Code != "too_many_channels" || !slices.Equal(f.Channels, []string{"trade:ONEMORE"}) {
			t.Fatalf("got %+v, want too_many_channels [trade:ONEMORE]", f)
		}
	})
	t.Run("duplicates count once", func(t *testing.T) {
		c := dialAuthed(t, r, "dave")
		chs := make([]string, 4000)
		for i := range chs {
			chs[i] = []string{"trade:AAPL", "TRADE:aapl"}[i%2]
		}
		if sub := c.Subscribe(map[string]any{"channels": chs, "snapshot": false}); !slices.Equal(sub.Channels, []string{"trade:AAPL"}) {
			t.Fatalf("subscribed %v, want [trade:AAPL]", sub.Channels)
		}
	})
	t.Run("thousands of invalid channels", func(t *testing.T) {
		c := dialAuthed(t, r, "erin")
		chs := make([]string, 12000)
		for i := range chs {
			chs[i] = "x"
		}
		c.Send(map[string]any{"op": "subscribe", "channels": chs})
		if f := c.Read(); f.Code != "invalid_channel" {
			t.Fatalf("got %+v, want invalid_channel", f.Code)
		}
		c.ping("ok")
	})
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) { c.RateLimit, c.RateBurst = 50, 100 })

	t.Run("burst is cut, connection stays", func(t *testing.T) {
		c := dialAuthed(t, r, "alice")
		in := c.pump()
		const n = 300
		start := time.Now()
		for i := 0; i < n; i++ {
			c.Send(map[string]string{"op": "ping", "id": fmt.Sprint("p", i)})
		}
		// Probe at a pace the limit allows until a probe is answered: the
		// frames are handled in order, so then all pings have been.
		pongs, limited := 0, 0
		answered := false
		for k := 0; !answered; k++ {
			if k == 50 {
				t.Fatalf("no probe answered; %d pongs, %d rate_limited", pongs, limited)
			}
			c.Send(map[string]string{"op": "ping", "id": fmt.Sprint("probe", k)})
			wait := time.NewTimer(200 * time.Millisecond)
		drain:
			for {
				select {
				case p, ok := <-in:
					if !ok || p.err != nil {
						t.Fatalf("connection ended: %v", p.err)
					}
					switch {
					case p.frame.Type == "pong" && strings.HasPrefix(p.frame.ID, "probe"):
						answered = true
						break drain
					case p.frame.Type == "pong":
						pongs++
					case p.frame.Type == "error" && p.frame.Code == "rate_limited":
						limited++
					default:
						t.Fatalf("unexpected frame %s", p.raw)
					}
				case <-wait.C:
					break drain
				}
			}
			wait.Stop()
		}
		elapsed := time.Since(start)
		t.Logf("%d pings: %d pongs, %d rate_limited errors", n, pongs, limited)
		if limited < 1 || pongs < 100 || pongs >= n {
			t.Fatalf("%d pongs and %d rate_limited for %d pings; want the burst of 100 answered, the rest partly dropped, and an error", pongs, limited, n)
		}
		if limited > 1+int(elapsed/time.Second) {
			t.Fatalf("%d rate_limited errors in %v: more than one a second", limited, elapsed)
		}
	})

	t.Run("over the limit for long closes 4029", func(t *testing.T) {
		c := dialAuthed(t, r, "bob")
		in := c.pump()
		// ended reports whether the connection ended, failing unless 4029.
		ended := func(p pumped) bool {
			if p.err == nil {
				return false
			}
			if code, ok := wsclient.CloseCodeOf(p.err); !ok || code != 4029 {
				t.Fatalf("connection ended with %v, want close 4029", p.err)
			}
			return true
		}
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case p := <-in:
				if ended(p) {
					return
				}
				continue
			default:
			}
			if err := c.ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping"}`)); err != nil {
				for p := range in { // closed: the pump has the close frame
					if ended(p) {
						return
					}
				}
			}
		}
		t.Fatal("still open after flooding for 15 s, want close 4029")
	})
}

func TestMaxConnections(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) { c.MaxConns = 2 })
	first := dialAuthed(t, r, "alice")
	dial(t, r, "") // not authenticated yet: counts all the same
	for _, how := range []string{"query", "header"} {
		ws, resp, err := upgradeWith(r, how, token(t, "bob", time.Hour), nil)
		expectRefusedUpgrade(t, ws, resp, err, http.StatusServiceUnavailable, "unavailable", "")
	}
	_ = first.ws.Close()
	poll.Until(t, 10*time.Second, func() error {
		ws, resp, err := upgradeWith(r, "query", token(t, "bob", time.Hour), nil)
		if err != nil {
			return fmt.Errorf("still refused: %v %v", err, resp)
		}
		if f := wrap(t, ws).Read(); f.Type != "welcome" {
			t.Fatalf("got %+v, want welcome", f)
		}
		return nil
	})
}

func TestOrigins(t *testing.T) {
	e := newEnv(t, 1)
	same := e.startReplica("pub-same", nil)
	listed := e.startReplica("pub-list", func(c *Config) {
		c.AllowedOrigins = []string{"https://app.example", "http://localhost:3000"}
	})
	star := e.startReplica("pub-star", func(c *Config) { c.AllowedOrigins = []string{"*"} })
	own := func(r *replica) string { return "http://" + r.http.Listener.Addr().String() }
	ownTLS := func(r *replica) string { return "https://" + r.http.Listener.Addr().String() }
	tests := []struct {
		name   string
		r      *replica
		origin string // "" sends none
		ok     bool
		proto  string // X-Forwarded-Proto, as from a proxy that terminates TLS
	}{
		{"default: no origin", same, "", true, ""},
		{"default: own host, https page, plain request", same, ownTLS(same), true, ""},
		{"default: own host, https page, TLS at the proxy", same, ownTLS(same), true, "https"},
		{"default: own host, http page, TLS at the proxy", same, own(same), false, "https"},
		{"default: own host, http page, plain at the proxy", same, own(same), true, "http"},
		{"default: own host, ftp page", same, "ftp://" + same.http.Listener.Addr().String(), false, ""},
		{"default: own host", same, own(same), true, ""},
		{"default: own host in upper case", same, strings.ToUpper(own(same)), true, ""},
		{"default: foreign", same, "https://evil.example", false, ""},
		{"default: null", same, "null", false, ""},
		{"default: own host, other port", same, "http://127.0.0.1:1", false, ""},
		{"default: own host as a prefix", same, own(same) + ".evil.example", false, ""},
		{"default: own host as a path", same, "https://evil.example/" + strings.TrimPrefix(own(same), "http://"), false, ""},
		{"list: listed", listed, "https://app.example", true, ""},
		{"list: listed, other case", listed, "HTTPS://App.Example", true, ""},
		{"list: second entry", listed, "http://localhost:3000", true, ""},
		{"list: other scheme", listed, "http://app.example", false, ""},
		{"list: listed, default port spelt out", listed, "https://app.example:443", true, ""},
		{"list: other scheme, default port spelt out", listed, "http://app.example:443", false, ""},
		{"list: other port", listed, "http://localhost:3001", false, ""},
		{"list: suffix", listed, "https://app.example.evil", false, ""},
		{"list: subdomain", listed, "https://evil.app.example", false, ""},
		{"list: own host not listed", listed, own(listed), false, ""},
		{"list: null", listed, "null", false, ""},
		{"list: no origin", listed, "", true, ""},
		{"star: foreign", star, "https://evil.example", true, ""},
		{"star: null", star, "null", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := http.Header{}
			if tt.origin != "" {
				hdr.Set("Origin", tt.origin)
			}
			if tt.proto != "" {
				hdr.Set("X-Forwarded-Proto", tt.proto)
			}
			ws, resp, err := upgradeWith(tt.r, "query", token(t, "alice", time.Hour), hdr)
			if !tt.ok {
				if err == nil {
					_ = ws.Close()
					t.Fatal("upgrade accepted, want 403")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("got %v %v, want 403", err, resp)
				}
				return
			}
			if err != nil {
				t.Fatalf("upgrade refused: %v %v", err, resp)
			}
			if f := wrap(t, ws).Read(); f.Type != "welcome" {
				t.Fatalf("got %+v, want welcome", f)
			}
		})
	}
}

// Over TLS terminated by the publisher itself, a page of the same host
// served over http may not connect; one served over https may.
func TestOriginsTLS(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-tls", nil)
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = r.srv.HTTPServer(stdlog.New(io.Discard, "", 0))
	ts.StartTLS()
	t.Cleanup(ts.Close)
	d := websocket.Dialer{TLSClientConfig: ts.Client().Transport.(*http.Transport).TLSClientConfig}
	url := "wss://" + ts.Listener.Addr().String() + "/v1/stream?access_token=" + token(t, "alice", time.Hour)
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"http://" + ts.Listener.Addr().String(), false},
		{"https://" + ts.Listener.Addr().String(), true},
	} {
		ws, resp, err := d.Dial(url, http.Header{"Origin": {tc.origin}})
		if !tc.ok {
			if err == nil {
				_ = ws.Close()
				t.Fatalf("origin %s: upgrade accepted, want 403", tc.origin)
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("origin %s: got %v %v, want 403", tc.origin, err, resp)
			}
			continue
		}
		if err != nil {
			t.Fatalf("origin %s: %v %v", tc.origin, err, resp)
		}
		if f := wrap(t, ws).Read(); f.Type != "welcome" {
			t.Fatalf("origin %s: got %+v, want welcome", tc.origin, f)
		}
	}
}

// A client that answers the server's pings stays; one that does not is
// dropped after two heartbeats.
func TestHeartbeat(t *testing.T) {
	e := newEnv(t, 1)
	r := e.startReplica("pub-1", func(c *Config) { c.Heartbeat = 150 * time.Millisecond })
	var mu sync.Mutex
	pings := 0
	alive := dialAuthed(t, r, "alive")
	alive.ws.SetPingHandler(func(data string) error {
		mu.Lock()
		pings++
		mu.Unlock()
		return alive.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	mute := dialAuthed(t, r, "mute")
	mute.ws.SetPingHandler(func(string) error { return nil })
	aliveIn, muteIn := alive.pump(), mute.pump()
	p := <-muteIn
	if p.err == nil {
		t.Fatalf("mute client got %s, want the connection dropped", p.raw)
	}
	poll.Until(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		select {
		case p := <-aliveIn:
			t.Fatalf("answering client got %s %v, want nothing", p.raw, p.err)
		default:
		}
		if pings < 6 {
			return fmt.Errorf("%d pings answered", pings)
		}
		return nil
	})
}

// slogTo is a debug-level logger writing to w.
func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// launch starts a replica for t like startReplica, but logs at debug level
// into logs as well as the test log, captures the HTTP server's error log too
// (where net/http reports a handler panic it recovered), and does not wait
// for the replica to be ready.
func (e *env) launch(t testing.TB, id string, mod func(*Config), logs *logbuf.Buffer) *replica {
	t.Helper()
	cfg := e.config(id)
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w := io.MultiWriter(testWriter{t}, logs)
	log := slogTo(w)
	srv, err := New(cfg, log.With("replica", id), obs.NewRegistry(), cfg.NewRedis)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Config.ErrorLog = stdlog.New(w, "http-server: ", 0)
	hs.Start()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{srv: srv, http: hs, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// hostileFrame returns one malformed, mistyped or merely odd frame.
func hostileFrame(rnd func(int) int, sub string) (int, []byte) {
	str := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd(256))
		}
		return string(b)
	}
	fixed := []string{
		`{"op":1}`, `{"op":null}`, `{"op":["ping"]}`, `[]`, `"op"`, `0`, `null`, `true`, `{}`, ``, ` `,
		`{"op":"subscribe","channels":{}}`, `{"op":"subscribe","channels":[1,2]}`, `{"op":"subscribe","channels":null}`,
		`{"op":"subscribe","channels":[null]}`, `{"op":"subscribe","channels":["trade:A"],"since":[]}`,
		`{"op":"subscribe","channels":["trade:A"],"since":{"trade:A":5}}`, `{"op":"subscribe","channels":["trade:A"],"since":{"trade:A":null}}`,
		`{"op":"subscribe","channels":["trade:A"],"snapshot":"no"}`, `{"op":"ping","id":{}}`, `{"op":"ping","id":1e999}`,
		`{"op":"ping","op":"subscribe"}`, `{"op":"subscribe","channels":["trade:A"],"since":{"trade:A":"18446744073709551615-18446744073709551615"}}`,
		`{"op":"subscribe","channels":["trade:*"],"since":{"trade:*":"1-0"}}`, `{"op":"unsubscribe","channels":["*"]}`,
		`{"op":"unsubscribe","channels":"trade:A"}`, `{"op":"auth","token":"garbage"}`, `{"op":"auth","token":""}`,
		`{"op":"AUTH"}`, `{"op":"Ping"}`, `{"op":"ping "}`, `{"op":"\u0000"}`, `{"op":"\ud800"}`,
		`{"op":"subscribe","channels":["trade:A","trade:A\u0000"]}`, `{"op":"subscribe","channels":["quote:*","trade:AAPL"],"since":{"trade:AAPL":"0-0"}}`,
		"{\"op\":\"ping\",\"id\":\"\xff\xfe\xfd\"}", `{"op":"subscribe","channels":["trade:AAPL"],"since":{"trade:AAPL":"-1"}}`,
	}
	switch k := rnd(10); k {
	case 0: // random bytes
		return websocket.TextMessage, []byte(str(rnd(2000)))
	case 1:
		return websocket.BinaryMessage, []byte(str(rnd(2000)))
	case 2:
		return websocket.TextMessage, []byte(fixed[rnd(len(fixed))])
	case 3: // unknown op
		return websocket.TextMessage, []byte(mustJSON(map[string]any{"op": str(1 + rnd(30)), "id": str(rnd(10))}))
	case 4: // deeply nested
		n := 5000 + rnd(25000)
		return websocket.TextMessage, []byte(`{"op":"subscribe","channels":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`)
	case 5:
		n := 2000 + rnd(8000)
		return websocket.TextMessage, []byte(strings.Repeat(`{"a":`, n) + `1` + strings.Repeat(`}`, n))
	case 6: // huge strings under 64 KiB
		big := strings.Repeat("Z", 30000+rnd(30000))
		if rnd(8) == 0 {
			big += strings.Repeat("Z", 10000) // over 64 KiB: 1009
		}
		f := []map[string]any{
			{"op": "ping", "id": big}, {"op": big}, {"op": "auth", "token": big},
			{"op": "subscribe", "channels": []string{big}}, {"op": "subscribe", "channels": []string{"trade:A"}, "since": map[string]string{big: "1-0"}},
		}[rnd(5)]
		return websocket.TextMessage, []byte(mustJSON(f))
	case 7: // random JSON of the right shape with random values
		vals := []any{nil, 1, -1.5, "", "trade:AAPL", "trade:*", "*", []any{}, []any{"trade:X", 3}, map[string]any{}, true, str(8)}
		m := map[string]any{}
		for _, key := range []string{"op", "id", "token", "channels", "since", "snapshot"} {
			if rnd(2) == 0 {
				m[key] = vals[rnd(len(vals))]
			}
		}
		if rnd(2) == 0 {
			m["op"] = []string{"subscribe", "unsubscribe", "ping", "auth"}[rnd(4)]
		}
		return websocket.TextMessage, []byte(mustJSON(m))
	case 8: // well-formed requests
		return websocket.TextMessage, []byte([]string{
			`{"op":"subscribe","channels":["trade:*","quote:AAPL"]}`, `{"op":"unsubscribe","channels":["trade:*"]}`,
			`{"op":"ping","id":"x"}`, `{"op":"auth","token":"` + jwtOf("HS256", claims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}, hmacSigner(sha256.New, []byte(testSecret))) + `"}`,
		}[rnd(4)])
	default: // control frames
		return websocket.PingMessage, []byte(str(rnd(125)))
	}
}

// Fifty connections send garbage at once while events flow. Afterwards the
// replica is ready, counts no connection it does not have, and a client
// that behaves gets what is written; nothing panicked.
func TestGarbageFlood(t *testing.T) {
	e := newEnv(t, 1)
	logs := &logbuf.Buffer{}
	r := e.launch(t, "pub-1", func(c *Config) { c.AuthTimeout = time.Second }, logs)
	waitReady(t, r)
	before := dialAuthed(t, r, "steady")
	before.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})

	stop := make(chan struct{})
	var writes sync.WaitGroup
	writes.Add(1)
	go func() { // events flow meanwhile, to every fuzz client on trade:*
		defer writes.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ev := eventOf("trade:FUZZ", float64(i))
			if _, err := e.writer.Write(context.Background(), streams.PendingOf(ev)); err != nil {
				t.Errorf("write: %v", err)
				return
			}
		}
	}()

	const conns, frames = 50, 40
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(i+1), 42)).IntN // fixed: a failure replays
			sub := fmt.Sprint("fuzz-", i)
			q := ""
			if i%5 != 0 { // every fifth stays unauthenticated
				tok, _ := auth.Mint(testSecret, sub, time.Hour, nil, time.Now())
				q = "access_token=" + tok
			}
			ws, _, err := websocketDial(wsURL(r, q), nil)
			if err != nil {
				t.Errorf("conn %d: dial: %v", i, err)
				return
			}
			defer ws.Close()
			// Read whatever comes, until the pong of the last frame or the
			// server's close: closing earlier would reset the connection and
			// lose frames not yet read by the server.
			end := make(chan struct{})
			go func() {
				defer close(end)
				for {
					_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
					_, data, err := ws.ReadMessage()
					if err != nil || string(data) == `{"type":"pong","id":"end"}` {
						return
					}
				}
			}()
			defer func() { <-end }()
			defer ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping","id":"end"}`))
			for j := 0; j < frames; j++ {
				mt, data := hostileFrame(rng, sub)
				if mt == websocket.PingMessage {
					err = ws.WriteControl(mt, data, time.Now().Add(time.Second))
				} else {
					_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
					err = ws.WriteMessage(mt, data)
				}
				if err != nil {
					return // closed by the server (4000, 4001, 1009): fine
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	writes.Wait()

	poll.Until(t, 15*time.Second, func() error {
		r.srv.mu.Lock()
		n := r.srv.nconns
		r.srv.mu.Unlock()
		if n != 1 {
			return fmt.Errorf("replica counts %d connections, want 1", n)
		}
		r.srv.users.mu.Lock()
		defer r.srv.users.mu.Unlock()
		if len(r.srv.users.n) != 1 || r.srv.users.n["steady"] != 1 {
			return fmt.Errorf("users %v, want only steady", r.srv.users.n)
		}
		return nil
	})
	if err := r.srv.Ready(); err != nil {
		t.Fatalf("not ready after the flood: %v", err)
	}
	after := dialAuthed(t, r, "late")
	after.Subscribe(map[string]any{"channels": []string{"trade:AAPL"}, "snapshot": false})
	e.write("trade:AAPL", 1, 2, 3)
	for _, c := range []*client{before, after} {
		c.collect(tape.New(t), "trade:AAPL", 3)
	}
	m := r.srv.deps.Metrics
	t.Logf("flood: %v client frames; error frames unauthorized %v, bad_request %v, invalid_channel %v; closes protocol %v, unauthorized %v, too_big %v",
		testutil.ToFloat64(m.FramesIn), testutil.ToFloat64(m.Errors.WithLabelValues("unauthorized")),
		testutil.ToFloat64(m.Errors.WithLabelValues("bad_request")), testutil.ToFloat64(m.Errors.WithLabelValues("invalid_channel")),
		testutil.ToFloat64(m.Closes.WithLabelValues("protocol")), testutil.ToFloat64(m.Closes.WithLabelValues("unauthorized")),
		testutil.ToFloat64(m.Closes.WithLabelValues("too_big")))
	if strings.Contains(logs.String(), "panic") {
		t.Fatalf("a panic was logged:\n%s", logs.String())
	}
}

// eventOf is one trade event of ch, for writers off the test goroutine.
func eventOf(ch string, price float64) []event.Event {
	c, err := event.ParseChannel(ch)
	if err != nil {
		panic(err)
	}
	data, _ := json.Marshal(event.Trade{Price: price, Size: 1})
	return []event.Event{{Channel: c, TS: time.Now().UnixMilli(), Data: data}}
}
