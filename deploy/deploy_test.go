// Package deploy holds deployment files; this test keeps them in step with
// the code: every environment variable they set is one the service reads,
// the probes hit the health endpoints, the grace periods nest, and the
// README documents every variable.
package deploy

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/outbound-mail/outbound/internal/config"
)

// docs parses every YAML document of a file.
func docs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			out = append(out, d)
		}
	}
}

// dig walks maps and lists: dig(x, "spec", "containers", 0, "name").
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: not a map", path)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: not a list of %d", path, k+1)
			}
			v = l[k]
		}
	}
	return v
}

func TestKubernetes(t *testing.T) {
	known := config.Variables()
	files, _ := filepath.Glob("kubernetes/*.yaml")
	if len(files) < 4 {
		t.Fatalf("kubernetes manifests: %v", files)
	}
	kinds := map[string]map[string]any{}
	for _, f := range files {
		for _, d := range docs(t, f) {
			kinds[d["kind"].(string)] = d
		}
	}
	for _, kind := range []string{"Deployment", "Service", "Secret", "PodDisruptionBudget"} {
		if kinds[kind] == nil {
			t.Errorf("no %s manifest", kind)
		}
	}

	pod := dig(t, kinds["Deployment"], "spec", "template", "spec")
	c := dig(t, pod, "containers", 0)
	if p := dig(t, c, "livenessProbe", "httpGet", "path"); p != "/healthz" {
		t.Errorf("liveness probe path %v", p)
	}
	if p := dig(t, c, "readinessProbe", "httpGet", "path"); p != "/readyz" {
		t.Errorf("readiness probe path %v", p)
	}
	env := map[string]string{}
	for _, e := range dig(t, c, "env").([]any) {
		m := e.(map[string]any)
		env[m["name"].(string)], _ = m["value"].(string)
	}
	for name := range dig(t, kinds["Secret"], "stringData").(map[string]any) {
		env[name] = "(secret)"
	}
	for name := range env {
		if !slices.Contains(known, name) {
			t.Errorf("kubernetes sets %s, which the service does not read", name)
		}
	}
	for _, required := range []string{"OUTBOUND_REDIS_URL", "OUTBOUND_SECRET_KEY", "OUTBOUND_API_KEYS"} {
		if env[required] == "" {
			t.Errorf("kubernetes does not provide %s", required)
		}
	}
	_, port, _ := strings.Cut(env["OUTBOUND_LISTEN"], ":")
	if cp := dig(t, c, "ports", 0, "containerPort"); strconv.Itoa(cp.(int)) != port {
		t.Errorf("containerPort %v, OUTBOUND_LISTEN port %s", cp, port)
	}
	grace, err := time.ParseDuration(env["OUTBOUND_SHUTDOWN_GRACE"])
	if err != nil {
		t.Fatal(err)
	}
	if kill := dig(t, pod, "terminationGracePeriodSeconds").(int); time.Duration(kill)*time.Second <= grace {
		t.Errorf("terminationGracePeriodSeconds %d is not longer than OUTBOUND_SHUTDOWN_GRACE %s", kill, grace)
	}
	if dig(t, pod, "securityContext", "runAsNonRoot") != true || dig(t, c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Error("pod must run as non-root on a read-only root filesystem")
	}
	if dig(t, c, "resources", "limits", "memory") == nil || dig(t, c, "resources", "requests", "cpu") == nil {
		t.Error("resources not set")
	}
}

func TestCompose(t *testing.T) {
	known := config.Variables()
	d := docs(t, "docker-compose.yaml")[0]
	for _, svc := range []string{"outbound", "redis", "mailpit"} {
		if dig(t, d, "services", svc) == nil {
			t.Errorf("compose has no %s service", svc)
		}
	}
	for name := range dig(t, d, "services", "outbound", "environment").(map[string]any) {
		if !slices.Contains(known, name) {
			t.Errorf("compose sets %s, which the service does not read", name)
		}
	}
	conf, err := os.ReadFile("redis.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "appendonly yes") || !strings.Contains(string(conf), "appendfsync everysec") {
		t.Error("redis.conf does not turn on AOF with everysec")
	}
}

func TestReadmeDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range config.Variables() {
		if !strings.Contains(string(readme), "| `"+name+"` |") {
			t.Errorf("README's configuration table lacks %s", name)
		}
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", "AS build", `CMD ["serve"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
