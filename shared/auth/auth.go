// Package auth verifies the JSON Web Tokens that authenticate users and
// mints development tokens. A Verifier is built once at start and is safe
// for concurrent use.
package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tickwire/tickwire/shared/event"
)

// Sentinel errors.
var (
	// ErrNoKey means neither JWT_SECRET nor JWT_PUBLIC_KEY_FILE is set.
	ErrNoKey = errors.New("no token key: set JWT_SECRET (HS256) or JWT_PUBLIC_KEY_FILE (RS256/ES256)")
	// ErrInvalidToken wraps every reason a token is refused. Its message
	// never contains the token.
	ErrInvalidToken = errors.New("invalid token")
	// ErrTokenExpired is wrapped, beside ErrInvalidToken, when expiry is the
	// token's only fault: the client should fetch a fresh token
	// (docs/protocol.md's token_expired) rather than give up.
	ErrTokenExpired = errors.New("token expired")
)

// Config is what a Verifier checks.
type Config struct {
	Secret        string        // HS256 shared secret
	PublicKeyFile string        // PEM public key or certificate, RSA or ECDSA
	Issuer        string        // required iss, if set
	Audience      string        // required aud, if set
	Leeway        time.Duration // clock skew allowed on exp, nbf, iat
}

// Claims are the claims tickwire reads.
type Claims struct {
	jwt.RegisteredClaims
	// Channels limits what the user may subscribe to; absent (or null)
	// means all, and an empty list means none.
	Channels []string `json:"channels,omitzero"`
}

// Identity is a verified token.
type Identity struct {
	Subject string
	Expires time.Time
	// Patterns are the allowed channel patterns; nil allows every channel.
	Patterns []event.Pattern
}

// Allows reports whether the identity may subscribe to c.
func (id Identity) Allows(c event.Channel) bool {
	if id.Patterns == nil {
		return true
	}
	for _, p := range id.Patterns {
		if p.Covers(c) {
			return true
		}
	}
	return false
}

// Verifier checks tokens against one configuration.
type Verifier struct {
	parser *jwt.Parser
	// validator checks claims as parser does, to re-check an expired token.
	validator *jwt.Validator
	secret    []byte
	public    any // *rsa.PublicKey or *ecdsa.PublicKey
}

// NewVerifier builds the one parser of a process from cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{}
	var methods []string
	if cfg.Secret != "" {
		v.secret = []byte(cfg.Secret)
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.PublicKeyFile != "" {
		key, alg, err := loadPublicKey(cfg.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		v.public = key
		methods = append(methods, alg)
	}
	if len(methods) == 0 {
		return nil, ErrNoKey
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	v.validator = jwt.NewValidator(opts...)
	return v, nil
}

// Verify checks a token and returns who it names. Every failure wraps
// ErrInvalidToken with a reason that does not quote the token; a token whose
// only fault is its expiry wraps ErrTokenExpired too.
func (v *Verifier) Verify(token string) (Identity, error) {
	var claims Claims
	_, err := v.parser.ParseWithClaims(token, &claims, v.keyFor)
	expired := err != nil && v.onlyExpired(err, &claims)
	if err != nil && !expired {
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if claims.Subject == "" {
		return Identity{}, fmt.Errorf("%w: missing sub", ErrInvalidToken)
	}
	id := Identity{Subject: claims.Subject, Expires: claims.ExpiresAt.Time}
	if claims.Channels != nil {
		id.Patterns = make([]event.Pattern, 0, len(claims.Channels))
		for _, s := range claims.Channels {
			p, err := event.ParsePattern(s)
			if err != nil {
				return Identity{}, fmt.Errorf("%w: channels claim: %w", ErrInvalidToken, err)
			}
			id.Patterns = append(id.Patterns, p)
		}
	}
	if expired {
		return Identity{}, fmt.Errorf("%w: %w at %s", ErrInvalidToken, ErrTokenExpired, id.Expires.UTC().Format(time.RFC3339))
	}
	return id, nil
}

// onlyExpired reports whether err, from parsing claims, is an expiry and
// nothing else: the same claims with a later exp pass every check now.
// jwt verifies the signature before it validates claims, so the claims of
// an expired token have a good signature.
func (v *Verifier) onlyExpired(err error, claims *Claims) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) || claims.ExpiresAt == nil {
		return false
	}
	// An exp out of range (1e300) overflows jwt's check into "expired";
	// only an exp between 1970 and now counts.
	if exp := claims.ExpiresAt.Unix(); exp <= 0 || exp >= time.Now().Unix() {
		return false
	}
	unexpired := *claims
	unexpired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
	return v.validator.Validate(&unexpired) == nil
}

// keyFor hands each signing method only its own kind of key, so an HS256
// token "signed" with the RSA public key as secret never verifies.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	// RFC 7515 §4.1.11: a recipient must refuse a token whose crit header
	// names an extension it does not implement, and this one implements
	// none.
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New(`header "crit" names extensions this server does not implement`)
	}
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if v.secret != nil {
			return v.secret, nil
		}
	case *jwt.SigningMethodRSA:
		if k, ok := v.public.(*rsa.PublicKey); ok {
			return k, nil
		}
	case *jwt.SigningMethodECDSA:
		if k, ok := v.public.(*ecdsa.PublicKey); ok {
			return k, nil
		}
	}
	alg, _ := t.Header["alg"].(string)
	if len(alg) > 16 {
		alg = alg[:16] + "…"
	}
	return nil, fmt.Errorf("no key for algorithm %q", alg)
}

func loadPublicKey(path string) (any, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("JWT_PUBLIC_KEY_FILE: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, "", fmt.Errorf("JWT_PUBLIC_KEY_FILE %s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "CERTIFICATE":
		cert, cerr := x509.ParseCertificate(block.Bytes)
		if cerr != nil {
			return nil, "", fmt.Errorf("JWT_PUBLIC_KEY_FILE %s: %w", path, cerr)
		}
		key = cert.PublicKey
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	}
	if err != nil {
		return nil, "", fmt.Errorf("JWT_PUBLIC_KEY_FILE %s: %w", path, err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		return k, jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, "", fmt.Errorf("JWT_PUBLIC_KEY_FILE %s: ECDSA key must be P-256 for ES256", path)
		}
		return k, jwt.SigningMethodES256.Alg(), nil
	default:
		return nil, "", fmt.Errorf("JWT_PUBLIC_KEY_FILE %s: key type %T: want RSA or ECDSA P-256", path, key)
	}
}

// Mint returns an HS256 token for sub, valid for ttl from now, limited to
// channels when that is not nil. It is for development and tests; production
// tokens come from the identity provider.
func Mint(secret, sub string, ttl time.Duration, channels []string, now time.Time) (string, error) {
	if secret == "" {
		return "", ErrNoKey
	}
	if sub == "" {
		return "", errors.New("mint token: empty subject")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("mint token: ttl %s: want a positive lifetime (a token with no life left is refused at once)", ttl)
	}
	for _, c := range channels {
		if _, err := event.ParsePattern(c); err != nil {
			return "", fmt.Errorf("mint token: %w", err)
		}
	}
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Channels: channels,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return s, nil
}
