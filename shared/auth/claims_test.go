package auth_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tickwire/tickwire/shared/auth"
)

// A token whose only fault is its expiry is told apart (token_expired), so
// a client fetches a fresh one; any other fault beside the expiry is not.
func TestVerifyExpiredOnly(t *testing.T) {
	now := time.Now()
	v := newVerifier(t, auth.Config{Secret: secret, Issuer: "https://id.example", Audience: "tickwire", Leeway: 5 * time.Second})
	hs := func(over map[string]any) string {
		c := valid(map[string]any{"iss": "https://id.example", "aud": "tickwire"})
		for k, val := range over {
			if val == nil {
				delete(c, k)
			} else {
				c[k] = val
			}
		}
		return sign(t, jwt.SigningMethodHS256, []byte(secret), c)
	}
	past := now.Add(-time.Minute).Unix()
	tests := []struct {
		name    string
		token   string
		expired bool
	}{
		{"expired", hs(map[string]any{"exp": past}), true},
		{"expired, with channels", hs(map[string]any{"exp": past, "channels": []string{"trade:*"}}), true},
		{"expired, iat and nbf long ago", hs(map[string]any{"exp": past, "iat": now.Add(-time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix()}), true},
		{"expired and signed with another secret", sign(t, jwt.SigningMethodHS256, []byte(secret+"x"), valid(map[string]any{"exp": past, "iss": "https://id.example", "aud": "tickwire"})), false},
		{"expired and wrong iss", hs(map[string]any{"exp": past, "iss": "https://evil.example"}), false},
		{"expired and no aud", hs(map[string]any{"exp": past, "aud": nil}), false},
		{"expired and no sub", hs(map[string]any{"exp": past, "sub": nil}), false},
		{"expired and a bad channels claim", hs(map[string]any{"exp": past, "channels": []string{"nope:X"}}), false},
		{"expired and not yet valid", hs(map[string]any{"exp": past, "nbf": now.Add(time.Hour).Unix()}), false},
		{"expired and issued in the future", hs(map[string]any{"exp": past, "iat": now.Add(time.Hour).Unix()}), false},
		{"expired, issued after exp (no check of its own)", hs(map[string]any{"exp": past, "iat": now.Unix()}), true},
		{"exp overflowing", hs(map[string]any{"exp": 1e300}), false},
		{"not yet valid", hs(map[string]any{"nbf": now.Add(time.Hour).Unix()}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRefusal(t, v, tt.token)
			if got := errors.Is(err, auth.ErrTokenExpired); got != tt.expired {
				t.Errorf("errors.Is(%v, ErrTokenExpired) = %v, want %v", err, got, tt.expired)
			}
		})
	}
}

// RFC 7515 §4.1.11: a crit header naming anything (this verifier
// implements no extension) makes the token invalid, signature good or not.
func TestVerifyRefusesCrit(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: secret})
	for name, crit := range map[string]any{
		"unknown extension":       []string{"http://example.invalid/ext"},
		"b64 (RFC 7797)":          []string{"b64"},
		"empty list (also wrong)": []string{},
		"not a list":              "exp",
	} {
		t.Run(name, func(t *testing.T) {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, valid(map[string]any{"ext": true}))
			tok.Header["crit"] = crit
			s, err := tok.SignedString([]byte(secret))
			if err != nil {
				t.Fatal(err)
			}
			checkRefusal(t, v, s)
		})
	}
	// The same token without crit passes: the refusal is for crit alone.
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte(secret), valid(map[string]any{"ext": true}))); err != nil {
		t.Fatalf("token without crit: %v", err)
	}
}

// NumericDate claims must be JSON numbers (RFC 7519 §2); a string holding
// digits is refused although it would parse.
func TestVerifyRefusesNonNumericDates(t *testing.T) {
	now := time.Now()
	v := newVerifier(t, auth.Config{Secret: secret})
	exp, iat := now.Add(time.Hour).Unix(), now.Add(-time.Minute).Unix()
	str := func(n int64) string { return strconv.FormatInt(n, 10) }
	tests := map[string]map[string]any{
		"exp as a string":       {"exp": str(exp)},
		"exp as a float string": {"exp": str(exp) + ".0"},
		"exp null":              {"exp": json.RawMessage("null")},
		"exp as an object":      {"exp": map[string]int64{"s": exp}},
		"exp as a bool":         {"exp": true},
		"nbf as a string":       {"nbf": str(iat)},
		"iat as a string":       {"iat": str(iat)},
	}
	for name, over := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkRefusal(t, v, sign(t, jwt.SigningMethodHS256, []byte(secret), valid(over)))
			if !errors.Is(err, jwt.ErrTokenMalformed) {
				t.Errorf("error %v, want one wrapping ErrTokenMalformed", err)
			}
		})
	}
	// Numbers pass, fractional ones too (RFC 7519 allows them).
	for name, over := range map[string]map[string]any{
		"integers":  {"exp": exp, "iat": iat, "nbf": iat},
		"fractions": {"exp": float64(exp) + 0.5, "iat": float64(iat) + 0.25},
	} {
		if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, []byte(secret), valid(over))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
