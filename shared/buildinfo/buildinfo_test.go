package buildinfo

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestGetStamped(t *testing.T) {
	defer func(v, r string) { version, revision = v, r }(version, revision)
	version, revision = "v1.2.3-4-gabcdef", "abcdef0123456789"
	i := Get()
	if i.Version != "v1.2.3-4-gabcdef" || i.Revision != "abcdef0123456789" || i.GoVersion != runtime.Version() {
		t.Errorf("Get = %+v", i)
	}
	if s := i.String(); s != "v1.2.3-4-gabcdef (revision abcdef0123456789, "+runtime.Version()+")" {
		t.Errorf("String = %q", s)
	}
}

// TestGetUnstamped: a test binary has no stamp and no module version; the
// version is "devel", with the revision when the toolchain recorded one.
func TestGetUnstamped(t *testing.T) {
	i := Get()
	if !strings.HasPrefix(i.Version, "devel") || i.GoVersion == "" {
		t.Errorf("Get = %+v", i)
	}
	if i.Revision != "" && !strings.HasPrefix(i.Version, "devel-"+short(i.Revision)) {
		t.Errorf("Get = %+v: version does not carry the revision", i)
	}
	if got := (Info{Version: "", Revision: "0123456789abcdef"}).withDefaults(true).Version; got != "devel-0123456789ab-dirty" {
		t.Errorf("withDefaults = %q", got)
	}
}

func TestCollector(t *testing.T) {
	defer func(v, r string) { version, revision = v, r }(version, revision)
	version, revision = "v9", "rev9"
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector())
	want := `# HELP tickwire_build_info Always 1; its labels name the build of the process.
# TYPE tickwire_build_info gauge
tickwire_build_info{goversion="` + runtime.Version() + `",revision="rev9",version="v9"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tickwire_build_info"); err != nil {
		t.Error(err)
	}
}
