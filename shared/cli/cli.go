// Package cli holds what the command lines of both binaries share: the
// --help text, generated from the config structs (each field's envconfig
// name, default and desc tag), the `version` line, and `healthcheck`, the
// probe of images that have no shell or curl. Its functions keep no state
// and may be called concurrently.
package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/tickwire/tickwire/shared/buildinfo"
)

// IsHelp reports whether arg asks for the usage text.
func IsHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// Var is one environment variable of a config struct.
type Var struct {
	Name    string // e.g. REDIS_URL
	Default string // the default tag; "" when empty
	Desc    string // the desc tag: its meaning
}

// sep separates the fields in envconfig's template output: none of them
// can contain it.
const sep = "\x1f"

// Vars lists the environment variables of spec, a pointer to a config
// struct, in field order (embedded structs first where they are embedded).
func Vars(spec any) ([]Var, error) {
	var b bytes.Buffer
	format := "{{range .}}{{usage_key .}}" + sep + "{{usage_default .}}" + sep + "{{usage_description .}}\n{{end}}"
	if err := envconfig.Usagef("", spec, &b, format); err != nil {
		return nil, fmt.Errorf("usage of %T: %w", spec, err)
	}
	var vars []Var
	for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, sep, 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("usage of %T: unexpected line %q", spec, line)
		}
		vars = append(vars, Var{Name: f[0], Default: f[1], Desc: f[2]})
	}
	return vars, nil
}

// Usage writes the help text: the synopsis as given, then every variable
// of specs, each once (the first spec that names it wins), with its default
// and meaning.
func Usage(w io.Writer, synopsis string, specs ...any) error {
	seen := map[string]bool{}
	var all []Var
	for _, spec := range specs {
		vars, err := Vars(spec)
		if err != nil {
			return err
		}
		for _, v := range vars {
			if !seen[v.Name] {
				seen[v.Name] = true
				all = append(all, v)
			}
		}
	}
	var b bytes.Buffer
	b.WriteString(strings.TrimRight(synopsis, "\n"))
	b.WriteString("\n\nEnvironment (every variable has a default that works with a local Redis):\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	for _, v := range all {
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, v.Desc)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Version writes the `version` line: "NAME VERSION (revision …, goX)".
func Version(w io.Writer, name string) error {
	_, err := fmt.Fprintln(w, name, buildinfo.Get())
	return err
}

// ErrUnhealthy is returned by Healthcheck when the process answered but
// is not ready.
var ErrUnhealthy = errors.New("not ready")

// healthcheckTimeout bounds one probe; container runtimes have their own.
const healthcheckTimeout = 3 * time.Second

// Healthcheck asks the process listening on addr (host:port, or :port for
// this host) for /readyz, and returns nil on 200. It is the healthcheck of
// the distroless images, which have no shell and no curl.
func Healthcheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck %s: %w: %d %s", url, ErrUnhealthy, resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}
