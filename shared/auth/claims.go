package auth

import (
	"encoding/json"
	"fmt"
)

// UnmarshalJSON decodes the claims and refuses time claims that are not
// JSON numbers: RFC 7519 §2 defines a NumericDate as a number, and jwt
// alone would take "exp":"1790000000" too, a shape no issuer should mint.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var times struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if err := json.Unmarshal(b, &times); err != nil {
		return err
	}
	for _, t := range []struct {
		name string
		raw  json.RawMessage
	}{{"exp", times.Exp}, {"nbf", times.Nbf}, {"iat", times.Iat}} {
		if t.raw != nil && !isJSONNumber(t.raw) {
			return fmt.Errorf("claim %s: want a NumericDate (a JSON number of seconds)", t.name)
		}
	}
	type plain Claims // without this method
	return json.Unmarshal(b, (*plain)(c))
}

// isJSONNumber reports whether raw, a valid JSON value, is a number: only
// numbers start with a digit or a minus sign.
func isJSONNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}
