package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tickwire/tickwire/shared/auth"
	"github.com/tickwire/tickwire/shared/event"
)

const secret = "test-secret-of-enough-length-0123456789"

// keys are generated once: RSA generation is slow under -race.
var keys = sync.OnceValue(func() struct {
	rsa, otherRSA *rsa.PrivateKey
	ec, otherEC   *ecdsa.PrivateKey
	p384          *ecdsa.PrivateKey
} {
	var k struct {
		rsa, otherRSA *rsa.PrivateKey
		ec, otherEC   *ecdsa.PrivateKey
		p384          *ecdsa.PrivateKey
	}
	var err error
	for _, step := range []func() error{
		func() error { k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); return err },
		func() error { k.otherRSA, err = rsa.GenerateKey(rand.Reader, 2048); return err },
		func() error { k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return err },
		func() error { k.otherEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return err },
		func() error { k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); return err },
	} {
		if err := step(); err != nil {
			panic(err)
		}
	}
	return k
})

// writePEM writes one PEM block to a file in t's temporary directory.
func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pkixFile writes pub as a PKIX "PUBLIC KEY" PEM file.
func pkixFile(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, "PUBLIC KEY", der)
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// valid returns claims that pass, with overrides; a nil value deletes.
func valid(over map[string]any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix(), "iat": now.Add(-time.Minute).Unix()}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func newVerifier(t *testing.T, cfg auth.Config) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// checkRefusal asserts the token is refused with ErrInvalidToken and that
// the message does not quote it.
func checkRefusal(t *testing.T, v *auth.Verifier, token string) error {
	t.Helper()
	id, err := v.Verify(token)
	if err == nil {
		t.Fatalf("Verify accepted the token: %+v", id)
	}
	if !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("error %v does not wrap ErrInvalidToken", err)
	}
	msg := err.Error()
	if len(token) >= 8 && strings.Contains(msg, token) {
		t.Errorf("error message contains the token: %s", msg)
	}
	if parts := strings.Split(token, "."); len(parts) == 3 && len(parts[2]) > 8 && strings.Contains(msg, parts[2]) {
		t.Errorf("error message contains the signature: %s", msg)
	}
	if id.Subject != "" || !id.Expires.IsZero() || id.Patterns != nil {
		t.Errorf("Verify returned an identity with its error: %+v", id)
	}
	return err
}

func TestVerifyHS256Refusals(t *testing.T) {
	now := time.Now()
	leeway := 5 * time.Second
	v := newVerifier(t, auth.Config{Secret: secret, Leeway: leeway})
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, valid(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		want  error // a jwt sentinel the error must wrap, if any
	}{
		{"garbage", "this-is-not-a-token-at-all", jwt.ErrTokenMalformed},
		{"garbage with dots", "aaaaaaaaaa.bbbbbbbbbbbb.cccccccccccc", jwt.ErrTokenMalformed},
		{"empty", "", jwt.ErrTokenMalformed},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-enough-length-0123"), valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"expired beyond leeway", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"exp": now.Add(-time.Minute).Unix()})), auth.ErrTokenExpired},
		{"nbf in the future", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"nbf": now.Add(time.Minute).Unix()})), jwt.ErrTokenNotValidYet},
		{"iat in the future", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"iat": now.Add(time.Minute).Unix()})), jwt.ErrTokenUsedBeforeIssued},
		{"missing sub", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"sub": nil})), nil},
		{"empty sub", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"sub": ""})), nil},
		{"non-string sub", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"sub": 42})), jwt.ErrTokenMalformed},
		{"missing exp", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"exp": nil})), jwt.ErrTokenRequiredClaimMissing},
		{"non-numeric exp", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"exp": "tomorrow"})), jwt.ErrTokenMalformed},
		{"alg none", none, jwt.ErrTokenSignatureInvalid},
		{"HS384", sign(t, jwt.SigningMethodHS384, []byte(secret), valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"HS512", sign(t, jwt.SigningMethodHS512, []byte(secret), valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"RS256 without a key file", sign(t, jwt.SigningMethodRS256, keys().rsa, valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"ES256 without a key file", sign(t, jwt.SigningMethodES256, keys().ec, valid(nil)), jwt.ErrTokenSignatureInvalid},
		{"bad channels claim", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"channels": []string{"trade:AAPL", "trade:"}})), event.ErrInvalidChannel},
		{"unknown kind in channels claim", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"channels": []string{"order:*"}})), event.ErrInvalidChannel},
		{"channels claim not an array", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"channels": "trade:AAPL"})), jwt.ErrTokenMalformed},
		{"channels claim of numbers", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"channels": []int{1}})), jwt.ErrTokenMalformed},
		{"two tokens glued", sign(t, jwt.SigningMethodHS256, []byte(secret), valid(nil)) + "." + "x", jwt.ErrTokenMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRefusal(t, v, tt.token)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want one wrapping %v", err, tt.want)
			}
		})
	}
}

func TestVerifyHS256Accepts(t *testing.T) {
	now := time.Now()
	v := newVerifier(t, auth.Config{Secret: secret, Leeway: 5 * time.Second})
	exp := now.Add(time.Hour).Unix()
	tests := []struct {
		name   string
		claims jwt.MapClaims
	}{
		{"plain", valid(map[string]any{"exp": exp})},
		{"without iat", valid(map[string]any{"iat": nil})},
		{"expired within leeway", valid(map[string]any{"exp": now.Add(-2 * time.Second).Unix()})},
		{"nbf within leeway", valid(map[string]any{"nbf": now.Add(2 * time.Second).Unix()})},
		{"iat within leeway", valid(map[string]any{"iat": now.Add(2 * time.Second).Unix()})},
		{"nbf in the past", valid(map[string]any{"nbf": now.Add(-time.Hour).Unix()})},
		{"iss and aud not configured", valid(map[string]any{"iss": "anyone", "aud": "anything"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte(secret), tt.claims))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Subject != "alice" {
				t.Errorf("Subject = %q", id.Subject)
			}
			wantExp := time.Unix(tt.claims["exp"].(int64), 0)
			if !id.Expires.Equal(wantExp) {
				t.Errorf("Expires = %v, want %v", id.Expires, wantExp)
			}
			if id.Patterns != nil {
				t.Errorf("Patterns = %v, want nil (no channels claim)", id.Patterns)
			}
		})
	}
}

func TestVerifyIssuerAndAudience(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: secret, Issuer: "https://id.example", Audience: "tickwire"})
	hs := func(over map[string]any) string {
		return sign(t, jwt.SigningMethodHS256, []byte(secret), valid(over))
	}
	refused := []struct {
		name  string
		token string
		want  error
	}{
		{"wrong iss", hs(map[string]any{"iss": "https://evil.example", "aud": "tickwire"}), jwt.ErrTokenInvalidIssuer},
		{"missing iss", hs(map[string]any{"aud": "tickwire"}), jwt.ErrTokenRequiredClaimMissing},
		{"wrong aud", hs(map[string]any{"iss": "https://id.example", "aud": "other"}), jwt.ErrTokenInvalidAudience},
		{"missing aud", hs(map[string]any{"iss": "https://id.example"}), jwt.ErrTokenRequiredClaimMissing},
		{"aud list without ours", hs(map[string]any{"iss": "https://id.example", "aud": []string{"a", "b"}}), jwt.ErrTokenInvalidAudience},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkRefusal(t, v, tt.token); !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
	accepted := []struct {
		name  string
		token string
	}{
		{"matching", hs(map[string]any{"iss": "https://id.example", "aud": "tickwire"})},
		{"aud list with ours", hs(map[string]any{"iss": "https://id.example", "aud": []string{"other", "tickwire"}})},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Verify(tt.token); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestVerifyRS256(t *testing.T) {
	k := keys()
	v := newVerifier(t, auth.Config{PublicKeyFile: pkixFile(t, &k.rsa.PublicKey)})
	if id, err := v.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, valid(nil))); err != nil || id.Subject != "alice" {
		t.Fatalf("Verify RS256 = %+v, %v", id, err)
	}
	pemBytes, err := os.ReadFile(pkixFile(t, &k.rsa.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct{ name, token string }{
		{"other key", sign(t, jwt.SigningMethodRS256, k.otherRSA, valid(nil))},
		{"RS384", sign(t, jwt.SigningMethodRS384, k.rsa, valid(nil))},
		{"RS512", sign(t, jwt.SigningMethodRS512, k.rsa, valid(nil))},
		{"PS256", sign(t, jwt.SigningMethodPS256, k.rsa, valid(nil))},
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec, valid(nil))},
		// The classic confusion: HS256 "signed" with the public key's PEM
		// bytes as the HMAC secret.
		{"HS256 with the public key PEM as secret", sign(t, jwt.SigningMethodHS256, pemBytes, valid(nil))},
		{"HS256 with the public key DER as secret", sign(t, jwt.SigningMethodHS256, x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey), valid(nil))},
		{"expired", sign(t, jwt.SigningMethodRS256, k.rsa, valid(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}))},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) { checkRefusal(t, v, tt.token) })
	}
}

func TestVerifyES256(t *testing.T) {
	k := keys()
	v := newVerifier(t, auth.Config{PublicKeyFile: pkixFile(t, &k.ec.PublicKey)})
	if id, err := v.Verify(sign(t, jwt.SigningMethodES256, k.ec, valid(nil))); err != nil || id.Subject != "alice" {
		t.Fatalf("Verify ES256 = %+v, %v", id, err)
	}
	pemBytes, _ := os.ReadFile(pkixFile(t, &k.ec.PublicKey))
	refused := []struct{ name, token string }{
		{"other key", sign(t, jwt.SigningMethodES256, k.otherEC, valid(nil))},
		{"ES384", sign(t, jwt.SigningMethodES384, k.p384, valid(nil))},
		{"RS256", sign(t, jwt.SigningMethodRS256, k.rsa, valid(nil))},
		{"HS256 with the public key PEM as secret", sign(t, jwt.SigningMethodHS256, pemBytes, valid(nil))},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) { checkRefusal(t, v, tt.token) })
	}
}

func TestVerifySecretAndKeyFile(t *testing.T) {
	k := keys()
	v := newVerifier(t, auth.Config{Secret: secret, PublicKeyFile: pkixFile(t, &k.rsa.PublicKey)})
	for name, token := range map[string]string{
		"HS256": sign(t, jwt.SigningMethodHS256, []byte(secret), valid(nil)),
		"RS256": sign(t, jwt.SigningMethodRS256, k.rsa, valid(nil)),
	} {
		if _, err := v.Verify(token); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	pemBytes, _ := os.ReadFile(pkixFile(t, &k.rsa.PublicKey))
	checkRefusal(t, v, sign(t, jwt.SigningMethodHS256, pemBytes, valid(nil)))
}

func TestChannelsClaim(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: secret})
	token := sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"channels": []string{"trade:*", "quote:aapl"}}))
	id, err := v.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if len(id.Patterns) != 2 || id.Patterns[1].String() != "quote:AAPL" {
		t.Errorf("Patterns = %v", id.Patterns)
	}
	tests := []struct {
		channel string
		want    bool
	}{
		{"trade:AAPL", true},
		{"trade:*", true},
		{"quote:AAPL", true},
		{"quote:MSFT", false},
		{"quote:*", false}, // quote:AAPL does not grant quote:*
		{"bar:AAPL", false},
		{"signal:*", false},
	}
	for _, tt := range tests {
		t.Run(tt.channel, func(t *testing.T) {
			c, err := event.ParseChannel(tt.channel)
			if err != nil {
				t.Fatal(err)
			}
			if got := id.Allows(c); got != tt.want {
				t.Errorf("Allows(%s) = %v, want %v", tt.channel, got, tt.want)
			}
		})
	}

	all, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"channels": []string{"*"}})))
	if err != nil || !all.Allows(event.Channel{Kind: event.KindSignal, Symbol: event.Wildcard}) {
		t.Errorf(`claim ["*"] does not allow signal:*: %v`, err)
	}
	nothing, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"channels": []string{}})))
	if err != nil {
		t.Fatal(err)
	}
	if nothing.Allows(event.Channel{Kind: event.KindTrade, Symbol: "AAPL"}) {
		t.Error(`claim [] allows trade:AAPL`)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	if _, err := auth.NewVerifier(auth.Config{}); !errors.Is(err, auth.ErrNoKey) {
		t.Errorf("NewVerifier without keys = %v, want ErrNoKey", err)
	}
	if _, err := auth.NewVerifier(auth.Config{Issuer: "x", Audience: "y", Leeway: time.Second}); !errors.Is(err, auth.ErrNoKey) {
		t.Errorf("NewVerifier with only iss/aud = %v, want ErrNoKey", err)
	}
	k := keys()
	p384, _ := x509.MarshalPKIXPublicKey(&k.p384.PublicKey)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed, _ := x509.MarshalPKIXPublicKey(edPub)
	dir := t.TempDir()
	noPEM := filepath.Join(dir, "no.pem")
	if err := os.WriteFile(noPEM, []byte("not a pem file"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path string }{
		{"missing file", filepath.Join(dir, "missing.pem")},
		{"no PEM block", noPEM},
		{"P-384 key", writePEM(t, "PUBLIC KEY", p384)},
		{"Ed25519 key", writePEM(t, "PUBLIC KEY", ed)},
		{"garbage DER", writePEM(t, "PUBLIC KEY", []byte("garbage"))},
		{"garbage certificate", writePEM(t, "CERTIFICATE", []byte("garbage"))},
		{"garbage PKCS1", writePEM(t, "RSA PUBLIC KEY", []byte("garbage"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, err := auth.NewVerifier(auth.Config{PublicKeyFile: tt.path}); err == nil {
				t.Errorf("NewVerifier = %v, want an error", v)
			} else if errors.Is(err, auth.ErrNoKey) {
				t.Errorf("error %v is ErrNoKey; want the file's problem", err)
			}
		})
	}
}

func TestNewVerifierKeyFormats(t *testing.T) {
	k := keys()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tickwire test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	rsaCert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.rsa.PublicKey, k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	ecCert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.ec.PublicKey, k.ec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		method jwt.SigningMethod
		key    any
	}{
		{"RSA PKIX", pkixFile(t, &k.rsa.PublicKey), jwt.SigningMethodRS256, k.rsa},
		{"RSA PKCS1", writePEM(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)), jwt.SigningMethodRS256, k.rsa},
		{"RSA certificate", writePEM(t, "CERTIFICATE", rsaCert), jwt.SigningMethodRS256, k.rsa},
		{"EC PKIX", pkixFile(t, &k.ec.PublicKey), jwt.SigningMethodES256, k.ec},
		{"EC certificate", writePEM(t, "CERTIFICATE", ecCert), jwt.SigningMethodES256, k.ec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, auth.Config{PublicKeyFile: tt.path})
			if _, err := v.Verify(sign(t, tt.method, tt.key, valid(nil))); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestMintRoundTrip(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: secret})
	now := time.Now().Truncate(time.Second)
	token, err := auth.Mint(secret, "bob", time.Hour, []string{"trade:aapl", "quote:*"}, now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(token)
	if err != nil {
		t.Fatalf("Verify(Mint) = %v", err)
	}
	if id.Subject != "bob" || !id.Expires.Equal(now.Add(time.Hour)) {
		t.Errorf("identity = %+v", id)
	}
	if len(id.Patterns) != 2 || id.Patterns[0].String() != "trade:AAPL" || id.Patterns[1].String() != "quote:*" {
		t.Errorf("Patterns = %v", id.Patterns)
	}

	unlimited, err := auth.Mint(secret, "carol", time.Minute, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.Verify(unlimited); err != nil || id.Patterns != nil {
		t.Errorf("Verify(Mint without channels) = %+v, %v; want nil Patterns", id, err)
	}

	expired, err := auth.Mint(secret, "dave", time.Minute, nil, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkRefusal(t, v, expired); !errors.Is(err, auth.ErrTokenExpired) {
		t.Errorf("expired minted token: %v", err)
	}
	// Another secret does not verify.
	other := newVerifier(t, auth.Config{Secret: secret + "x"})
	checkRefusal(t, other, token)
}

func TestMintEmptyChannelsAllowsNothing(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: secret})
	token, err := auth.Mint(secret, "erin", time.Hour, []string{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if id.Allows(event.Channel{Kind: event.KindTrade, Symbol: "AAPL"}) {
		t.Error("a token minted for no channels allows trade:AAPL")
	}
}

func TestMintErrors(t *testing.T) {
	now := time.Now()
	if _, err := auth.Mint("", "bob", time.Hour, nil, now); !errors.Is(err, auth.ErrNoKey) {
		t.Errorf("Mint without secret = %v, want ErrNoKey", err)
	}
	if _, err := auth.Mint(secret, "", time.Hour, nil, now); err == nil {
		t.Error("Mint with empty subject succeeded")
	}
	// publisher token --ttl -1h minted a token refused at once.
	for _, ttl := range []time.Duration{0, -time.Second, -time.Hour} {
		if tok, err := auth.Mint(secret, "bob", ttl, nil, now); err == nil || !strings.Contains(err.Error(), "positive") {
			t.Errorf("Mint with ttl %s = %q, %v; want an error asking for a positive ttl", ttl, tok, err)
		}
	}
	for _, bad := range []string{"trade:", "x:AAPL", "trade:.A"} {
		if _, err := auth.Mint(secret, "bob", time.Hour, []string{bad}, now); !errors.Is(err, event.ErrInvalidChannel) {
			t.Errorf("Mint with channel %q = %v, want ErrInvalidChannel", bad, err)
		}
	}
}

func TestVerifyConcurrent(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: secret})
	token, err := auth.Mint(secret, "bob", time.Hour, []string{"trade:*"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := v.Verify(token); err != nil {
					errs <- err
				}
				if _, err := v.Verify(token + "x"); err == nil {
					errs <- errors.New("tampered token verified")
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkVerifyHS256 is the cost of one upgrade's token check.
func BenchmarkVerifyHS256(b *testing.B) {
	v, err := auth.NewVerifier(auth.Config{Secret: secret})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := auth.Mint(secret, "storm-12345", time.Hour, nil, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
