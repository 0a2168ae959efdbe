// Package buildinfo says which build a process is: the version and
// revision stamped at build time (the Makefile passes `git describe` with
// -ldflags -X), else what the Go toolchain recorded in the binary, and
// exports them as the gauge tickwire_build_info. Everything here is read
// once and never changes; it is safe for concurrent use.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at link time:
//
//	-X github.com/tickwire/tickwire/shared/buildinfo.version=v1.2.3
//	-X github.com/tickwire/tickwire/shared/buildinfo.revision=<commit>
var (
	version  string
	revision string
)

// Info identifies a build.
type Info struct {
	Version   string `json:"version"`   // git describe, the module version, or "devel"
	Revision  string `json:"revision"`  // the commit, "" when unknown
	GoVersion string `json:"goversion"` // the toolchain that built it
}

// Get returns the build's info: the stamped values first, then the
// binary's own build information (a `go install …@version` has a module
// version; a build in a git checkout has vcs.revision).
func Get() Info {
	i := Info{Version: version, Revision: revision, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i.withDefaults(false)
	}
	if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		i.Version = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if i.Revision == "" {
				i.Revision = s.Value
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	return i.withDefaults(dirty)
}

// withDefaults names a build that was not stamped after its revision.
func (i Info) withDefaults(dirty bool) Info {
	if i.Version != "" {
		return i
	}
	i.Version = "devel"
	if i.Revision != "" {
		i.Version += "-" + short(i.Revision)
		if dirty {
			i.Version += "-dirty"
		}
	}
	return i
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// String is what `version` prints: "v1.2.3 (revision abc…, go1.26.0)".
func (i Info) String() string {
	rev := i.Revision
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("%s (revision %s, %s)", i.Version, rev, i.GoVersion)
}

// Collector returns the gauge tickwire_build_info{version,revision,goversion},
// always 1, for a registry.
func Collector() prometheus.Collector {
	i := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tickwire_build_info",
		Help: "Always 1; its labels name the build of the process.",
		ConstLabels: prometheus.Labels{
			"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion,
		},
	})
	g.Set(1)
	return g
}
