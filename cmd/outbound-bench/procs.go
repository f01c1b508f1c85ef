package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// proc is a child process, optionally pinned to CPUs with taskset.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
}

func (b *bench) start(name, cpus string, env []string, bin string, args ...string) (*proc, error) {
	if b.pin && cpus != "" {
		args = append([]string{"-c", cpus, bin}, args...)
		bin = "taskset"
	}
	logf, err := os.Create(filepath.Join(b.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logf}
	b.procs = append(b.procs, p)
	return p, nil
}

func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	p.log.Close()
}

// cpu is the process's user+system CPU time so far, from /proc.
func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// peakRSS is the process's high-water resident set size, from /proc.
func (p *proc) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis runs a fresh redis-server (no persistence, as a throughput
// baseline) on the service's CPU.
func (b *bench) startRedis() (*proc, *redis.Client, error) {
	port := strconv.Itoa(freePort())
	dir, _ := os.MkdirTemp(b.dir, "redis")
	p, err := b.start("redis-"+port, serviceCPU, os.Environ(), "redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err != nil {
		return nil, nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, PoolSize: 256})
	for range 100 {
		if rdb.Ping(context.Background()).Err() == nil {
			return p, rdb, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, nil, fmt.Errorf("redis-server on %s did not start", port)
}

// startOutbound runs `outbound serve` on the service's CPU.
func (b *bench) startOutbound(redisAddr string, workers int, extra ...string) (*proc, string, error) {
	port := strconv.Itoa(freePort())
	env := append([]string{
		"PATH=" + os.Getenv("PATH"),
		"OUTBOUND_LISTEN=127.0.0.1:" + port,
		"OUTBOUND_REDIS_URL=redis://" + redisAddr + "/0",
		"OUTBOUND_SECRET_KEY=" + b.secretKey,
		"OUTBOUND_API_KEYS=" + b.keys,
		"OUTBOUND_SMTP_CA_FILE=" + b.caFile,
		"OUTBOUND_ALLOW_PRIVATE_NETWORKS=true",
		"OUTBOUND_WORKERS=" + strconv.Itoa(workers),
		"OUTBOUND_SMTP_MAX_CONNECTIONS=" + strconv.Itoa(b.conns),
		"OUTBOUND_RATE_PER_MINUTE=1000000",
		"OUTBOUND_RATE_PER_DAY=100000000",
	}, extra...)
	p, err := b.start("outbound-"+port, serviceCPU, env, b.outbound, "serve")
	if err != nil {
		return nil, "", err
	}
	url := "http://127.0.0.1:" + port
	for range 200 {
		if res, err := http.Get(url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p, url, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, "", fmt.Errorf("outbound did not become ready; see %s", p.log.Name())
}
