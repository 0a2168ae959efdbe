package server

import (
	"net/http"
	"net/url"
	"strings"
)

// originChecker decides which browser pages may open a WebSocket here.
// A request without Origin is not from a browser and passes (other clients
// can send any Origin anyway). With "*" every origin passes; with a list,
// exactly the listed scheme://host[:port] (case and default port aside).
//
// With no list, a page of the request's own host passes if its scheme is
// no weaker than the request's: an https page always, an http page only
// when the request itself came without TLS. A request came with TLS when
// the publisher terminated it (r.TLS) or a proxy in front says so with
// X-Forwarded-Proto: https (deploy/nginx.conf does). A browser page cannot
// set that header on a WebSocket, so it cannot widen the rule.
func originChecker(allowed []string) func(*http.Request) bool {
	any := false
	set := make(map[string]bool, len(allowed))
	for _, o := range allowed {
		if o == "*" {
			any = true
			continue
		}
		if scheme, host, ok := parseOrigin(o); ok {
			set[scheme+"://"+host] = true
		}
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" || any {
			return true
		}
		scheme, host, ok := parseOrigin(origin)
		if !ok {
			return false
		}
		if len(allowed) > 0 {
			return set[scheme+"://"+host]
		}
		reqScheme := requestScheme(r)
		if scheme == "http" && reqScheme == "https" {
			return false
		}
		return host == canonicalHost(reqScheme, r.Host) || host == canonicalHost(scheme, r.Host)
	}
}

// parseOrigin splits an origin (or a configured one) into its lower-case
// scheme, http or https, and host without the scheme's default port.
func parseOrigin(o string) (scheme, host string, ok bool) {
	u, err := url.Parse(strings.TrimSuffix(o, "/"))
	if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", "", false
	}
	scheme = strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", "", false
	}
	return scheme, canonicalHost(scheme, u.Host), true
}

// canonicalHost lower-cases host and drops the port that is the default of
// scheme.
func canonicalHost(scheme, host string) string {
	host = strings.ToLower(host)
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		return strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		return strings.TrimSuffix(host, ":443")
	}
	return host
}

// requestScheme is https when the request came with TLS, here or at a
// proxy in front, and http otherwise.
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	if strings.EqualFold(strings.TrimSpace(proto), "https") {
		return "https"
	}
	return "http"
}
