package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/auth"
)

// fuzzSecret signs the seed tokens in testdata/fuzz/FuzzVerify; some of
// them expire in 2125, so the fuzzer also explores accepted tokens.
const fuzzSecret = "fuzz-secret-0123456789abcdef0123456789"

func FuzzVerify(f *testing.F) {
	v, err := auth.NewVerifier(auth.Config{Secret: fuzzSecret, Leeway: 5 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	for _, channels := range [][]string{nil, {"trade:*", "quote:AAPL"}, {"*"}} {
		tok, err := auth.Mint(fuzzSecret, "alice", time.Hour, channels, now)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Fuzz(func(t *testing.T, token string) {
		id, err := v.Verify(token)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Verify error %v does not wrap ErrInvalidToken", err)
			}
			// A token long enough not to occur by chance is never quoted.
			if len(token) > 40 && strings.Contains(err.Error(), token) {
				t.Fatalf("error message quotes the token: %v", err)
			}
			if id.Subject != "" || id.Patterns != nil {
				t.Fatalf("identity %+v returned with an error", id)
			}
			return
		}
		if id.Subject == "" || id.Expires.IsZero() {
			t.Fatalf("accepted token without sub or exp: %+v", id)
		}
		if id.Patterns != nil {
			for _, p := range id.Patterns {
				if p.String() == "" {
					t.Fatalf("empty pattern in %+v", id)
				}
			}
		}
	})
}
