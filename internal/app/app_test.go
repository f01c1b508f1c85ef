package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/config"
	"github.com/outbound-mail/outbound/internal/logtest"
	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/seal"
	"github.com/outbound-mail/outbound/internal/tenant"
)

// mustConfig reads a production configuration from env on top of the
// variables every configuration needs.
func mustConfig(t *testing.T, redisURL string, env map[string]string) config.Config {
	t.Helper()
	_, key, err := apikey.Generate("ops", apikey.ScopeAdmin)
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"OUTBOUND_REDIS_URL": redisURL, "OUTBOUND_SECRET_KEY": seal.NewKey(), "OUTBOUND_API_KEYS": key.Entry(),
		"OUTBOUND_WORKERS": "1", "OUTBOUND_SHUTDOWN_GRACE": "5s"}
	for k, v := range env {
		all[k] = v
	}
	cfg, err := config.Load(func(name string) string { return all[name] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs a on a loopback listener until the test ends; stop ends it
// early and returns what Run returned.
func start(t *testing.T, a *App) (url string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx, ln) }()
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			cancel()
			select {
			case result = <-ran:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return 10 s after its context ended")
			}
			stopped = true
		}
		return result
	}
	t.Cleanup(func() { stop() })
	return "http://" + ln.Addr().String(), stop
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

// grep is body's lines that start with prefix.
func grep(body, prefix string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// clients is how many connections the Redis server holds, rdb's own
// (one, used for nothing else) included.
func clients(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	list, err := rdb.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(strings.TrimSpace(list), "\n") + 1
}

// TestRunServesThenReleasesRedis: the service New wires from a production
// configuration answers ready on its own Redis connection, publishes the
// connection gauge, and after Run returns holds no Redis connection.
func TestRunServesThenReleasesRedis(t *testing.T) {
	srv := redistest.Start(t)
	logs := &logtest.Buffer{}
	a, err := New(mustConfig(t, srv.URL(), nil), slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	url, stop := start(t, a)
	if status, body := get(t, url+"/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz: %d %s", status, body)
	}
	if _, body := get(t, url+"/metrics"); !strings.Contains(body, "\noutbound_smtp_connections_open 0\n") {
		t.Errorf("/metrics lacks outbound_smtp_connections_open 0; its outbound_smtp series:\n%s", grep(body, "outbound_smtp"))
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"shutting down"`) {
		t.Errorf("no shutdown logged: %s", logs)
	}
	// The test's own inspecting connection is the one left.
	inspect := srv.Client(t)
	deadline := time.Now().Add(2 * time.Second)
	for clients(t, inspect) > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d Redis connections left after Run returned, want only the test's own", clients(t, inspect))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGivenRedisStaysOpen: a client passed with WithRedis belongs to the
// caller (tests share one between replicas), so Run leaves it usable.
func TestGivenRedisStaysOpen(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	a, err := New(mustConfig(t, "redis://127.0.0.1:1/0", nil), slog.New(slog.DiscardHandler), WithRedis(rdb))
	if err != nil {
		t.Fatal(err)
	}
	url, stop := start(t, a)
	// Ready although cfg.RedisURL leads nowhere: the given client is used.
	if status, body := get(t, url+"/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz: %d %s", status, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the caller's client after Run: %v", err)
	}
}

// TestRelayServerFromConfig: OUTBOUND_DEFAULT_RELAY's scheme picks the
// TLS mode; the relay always logs in with PLAIN and is trusted.
func TestRelayServerFromConfig(t *testing.T) {
	for _, tc := range []struct {
		url      string
		security tenant.Security
		port     int
	}{
		{"smtps://relay:pa%40ss@relay.example", tenant.SecurityTLS, 465},
		{"smtp://relay:pa%40ss@relay.example", tenant.SecurityStartTLS, 587},
		{"smtp://relay:pa%40ss@relay.example:2525", tenant.SecurityStartTLS, 2525},
	} {
		t.Run(tc.url, func(t *testing.T) {
			cfg := mustConfig(t, "redis://127.0.0.1:1/0", map[string]string{"OUTBOUND_DEFAULT_RELAY": tc.url,
				"OUTBOUND_DEFAULT_FROM": "no-reply@platform.example"})
			s := relayServer(cfg.DefaultRelay)
			if s.Host != "relay.example" || s.Port != tc.port || s.Security != tc.security {
				t.Errorf("got %s:%d %v, want relay.example:%d %v", s.Host, s.Port, s.Security, tc.port, tc.security)
			}
			if s.Auth != tenant.AuthPlain || s.Username != "relay" || s.Password.Reveal() != "pa@ss" || !s.Trusted {
				t.Errorf("got auth %v as %q (password %q), trusted %v; want PLAIN as relay (pa@ss), trusted", s.Auth, s.Username, s.Password.Reveal(), s.Trusted)
			}
		})
	}
	if s := relayServer(mustConfig(t, "redis://127.0.0.1:1/0", nil).DefaultRelay); s != nil {
		t.Errorf("no OUTBOUND_DEFAULT_RELAY gave relay %+v, want none", s)
	}
}
