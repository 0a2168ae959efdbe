package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickwire/tickwire/shared/poll"
	"github.com/tickwire/tickwire/shared/redistest"
	"github.com/tickwire/tickwire/testkit/logbuf"
	"github.com/tickwire/tickwire/testkit/wsclient"
)

// TestNginxConfig runs `nginx -t` on deploy/nginx.conf, when nginx is
// installed (make test installs Debian's, 1.22 on Debian 12): the config
// must load on the nginx of a stable distribution, not only the newest.
func TestNginxConfig(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx not installed (make test installs it as root)")
	}
	conf, err := filepath.Abs("../deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// -p: a prefix of our own for relative paths; -e: no default error
	// log under /var/log; pid in the temporary directory.
	cmd := exec.Command(nginx, "-t", "-q", "-p", dir, "-e", "stderr", "-c", conf, "-g", "pid "+filepath.Join(dir, "nginx.pid")+";")
	out, err := cmd.CombinedOutput()
	if err != nil {
		v, _ := exec.Command(nginx, "-v").CombinedOutput()
		t.Errorf("nginx -t on deploy/nginx.conf (%s): %v\n%s", strings.TrimSpace(string(v)), err, out)
	}
}

// TestComposeFile validates docker-compose.yml with every Compose that is
// installed: v1 (docker-compose, Debian 12's 1.29) and v2 (docker compose),
// and checks what the file promises: healthchecks and healthy ordering.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	src := string(raw)
	if strings.Contains("\n"+src, "\nname:") {
		t.Error("docker-compose.yml has a top-level name:, which Compose v1 rejects")
	}
	for _, want := range []string{
		`test: ["CMD", "/usr/local/bin/collector", "healthcheck"]`,
		`test: ["CMD", "/usr/local/bin/publisher", "healthcheck"]`,
		"pub-1:\n        condition: service_healthy",
		"aliases: [publishers]",
		"./deploy/monitoring:/etc/prometheus/monitoring:ro",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("docker-compose.yml lacks %q", want)
		}
	}
	ran := 0
	for _, c := range [][]string{{"docker-compose"}, {"docker", "compose"}} {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		if c[0] == "docker" && exec.Command("docker", "compose", "version").Run() != nil {
			continue // no Compose v2 plugin
		}
		args := append(c[1:], "-f", "docker-compose.yml", "--profile", "standby", "--profile", "monitoring", "config", "-q")
		cmd := exec.Command(c[0], args...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "JWT_SECRET=x")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s config: %v\n%s", strings.Join(c, " "), err, out)
		}
		ran++
	}
	if ran == 0 {
		t.Skip("neither docker-compose nor docker compose installed: only the file's text was checked")
	}
}

// TestKustomize builds deploy/k8s with kubectl, when installed, and checks
// the objects operators rely on.
func TestKustomize(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl not installed")
	}
	out, err := exec.Command("kubectl", "kustomize", "../deploy/k8s").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/k8s: %v\n%s", err, out)
	}
	docs := strings.Split(string(out), "\n---\n")
	kinds := map[string]int{}
	for _, d := range docs {
		for _, line := range strings.Split(d, "\n") {
			if k, ok := strings.CutPrefix(line, "kind: "); ok {
				kinds[k]++
			}
		}
	}
	for kind, n := range map[string]int{"HorizontalPodAutoscaler": 1, "Ingress": 1, "PodDisruptionBudget": 2, "Deployment": 2, "StatefulSet": 1} {
		if kinds[kind] != n {
			t.Errorf("%d %s, want %d (all kinds: %v)", kinds[kind], kind, n, kinds)
		}
	}
	all := string(out)
	for _, want := range []string{
		"--requirepass", "$(REDIS_PASSWORD)", "--maxmemory", "noeviction",
		"redis://:$(REDIS_PASSWORD)@redis:6379/0",
		`nginx.ingress.kubernetes.io/proxy-read-timeout: "3600"`,
		"name: tickwire-collector", // the collector PDB's selector
	} {
		if !strings.Contains(all, want) {
			t.Errorf("kustomize output lacks %q", want)
		}
	}
	for _, d := range docs {
		if strings.Contains(d, "kind: Deployment") && strings.Contains(d, "name: publisher\n") && strings.Contains(d, "\n  replicas:") {
			t.Error("the publisher Deployment fixes replicas:, which fights the HPA")
		}
	}
}

// TestNginxProxiesWebSocket runs deploy/nginx.conf for real (when nginx is
// installed) in front of a real publisher: the Docker-only parts (the
// resolver and the `publishers` alias) are replaced by the publisher's
// address, everything else is as shipped. A browser-like client (Origin of
// the page it came from) gets its WebSocket through it.
func TestNginxProxiesWebSocket(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx not installed (make test installs it as root)")
	}
	raw, err := os.ReadFile("../deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t)
	_, pubAddr := startPublisher(t, srv.URL(), "ngx", "ngx-1")
	lbAddr := freeAddr(t)
	dir := t.TempDir()
	conf := string(raw)
	for old, new := range map[string]string{
		"resolver 127.0.0.11 valid=5s ipv6=off;": "",
		"set $publishers publishers:8080;":       "set $publishers " + pubAddr + ";",
		"listen 8080;":                           "listen " + lbAddr + ";",
	} {
		if strings.Count(conf, old) != 1 {
			t.Fatalf("deploy/nginx.conf no longer has %q once: update this test with it", old)
		}
		conf = strings.Replace(conf, old, new, 1)
	}
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"body", "proxy"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(nginx, "-p", dir, "-e", "stderr", "-c", confFile, "-g",
		"daemon off; pid "+filepath.Join(dir, "nginx.pid")+"; user root;"+
			" error_log stderr warn;")
	log := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	// Its workers hold the output pipes too: stop the whole group, and
	// bound the wait for the pipes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("---- nginx ----\n%s", log.String())
		}
	})
	waitHTTP(t, "http://"+lbAddr+"/readyz", 200, 15*time.Second)

	h := http.Header{"Origin": {"http://" + lbAddr}}
	c := wsclient.Dial(t, "ws://"+lbAddr+"/v1/stream?access_token="+mint(t, "via-nginx"), h) // a failure logs nginx's output
	c.Wait = 15 * time.Second
	if f := c.Read(); f.Type != "welcome" || f.Replica != "ngx-1" {
		t.Errorf("first frame through nginx: %+v", f)
	}
	c.WS.Close() // nginx logs a request when it ends
	// The access log has the path, never the token of the query string.
	poll.Until(t, 5*time.Second, func() error {
		if !strings.Contains(log.String(), "/v1/stream") {
			return fmt.Errorf("no access log line yet")
		}
		return nil
	})
	if strings.Contains(log.String(), "access_token") {
		t.Errorf("nginx logged the token:\n%s", log.String())
	}
}
