package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a real Redis Cluster of masters only, made of redis-server
// processes on free loopback ports, for the life of one test.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n masters (at least 3) and joins them with
// redis-cli --cluster create.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		tb.Fatalf("redis-cli not found in PATH; install it (Debian: apt-get install redis-tools): %v", err)
	}
	c := &Cluster{}
	var addrs []string
	for range n {
		s := &Server{dir: tb.TempDir(), cluster: true}
		var err error
		for range 10 {
			// The cluster bus listens on port+10000: both must be free.
			s.Port = freeClusterPort(tb)
			if err = s.start(); err == nil {
				break
			}
		}
		if err != nil {
			tb.Fatalf("redistest: cluster node: %v", err)
		}
		tb.Cleanup(func() { s.stop() })
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitOK(tb)
	return c
}

// URL is the form OUTBOUND_REDIS_URL takes with OUTBOUND_REDIS_CLUSTER=true.
func (c *Cluster) URL() string {
	u := "redis://" + c.Nodes[0].Addr()
	for i, n := range c.Nodes[1:] {
		if i == 0 {
			u += "?"
		} else {
			u += "&"
		}
		u += "addr=" + n.Addr()
	}
	return u
}

// Client returns a cluster client closed when the test ends.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	opts, err := redis.ParseClusterURL(c.URL())
	if err != nil {
		tb.Fatal(err)
	}
	cc := redis.NewClusterClient(opts)
	tb.Cleanup(func() { cc.Close() })
	return cc
}

// waitOK waits until every node reports the cluster healthy and knows all
// slots.
func (c *Cluster) waitOK(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		client := redis.NewClient(&redis.Options{Addr: n.Addr()})
		for {
			info, err := client.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_assigned:16384") {
				break
			}
			if time.Now().After(deadline) {
				client.Close()
				log, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
				tb.Fatalf("redistest: cluster not ok after 30s (%v): %s\n%s", err, info, tail(log))
			}
			time.Sleep(100 * time.Millisecond)
		}
		client.Close()
	}
}

func freeClusterPort(tb testing.TB) int {
	tb.Helper()
	for range 50 {
		p := freePort(tb)
		if p+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	tb.Fatal(fmt.Errorf("redistest: no free port pair for a cluster node"))
	return 0
}
