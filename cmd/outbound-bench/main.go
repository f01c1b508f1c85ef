// Command outbound-bench measures Outbound on one machine next to what its
// parts allow: the accept rate (one message a request, and batches) next
// to bare XADDs to the same Redis, the delivery rate next to go-smtp
// clients feeding the same SMTP sink over reused connections, a naive
// connection-per-message sender, scaling with tenants, accept latency with
// a deep queue, memory and CPU per message, delivery to a sink at a
// distance, and mail submitted over SMTP next to a bare go-smtp server.
//
//	go run ./cmd/outbound-bench            # full run, about six minutes
//	go run ./cmd/outbound-bench -quick     # smaller, for a smoke test
//
// With two or more CPUs, the service and Redis are pinned to CPU 0 and the
// load generator and the sink to CPU 1 (taskset), so they do not steal
// each other's time.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/apikey"
	"github.com/outbound-mail/outbound/internal/netdelay"
	"github.com/outbound-mail/outbound/internal/seal"
)

const (
	serviceCPU = "0"
	loadCPU    = "1"

	// Figure 1b posts batches of this many messages, this many at a time.
	batchSize        = 100
	batchConcurrency = 4
)

type bench struct {
	dir, outbound      string
	pin                bool
	conns              int
	secretKey, keys    string
	adminToken         string
	sendToken          string
	caFile             string
	caPEM              []byte
	sinkAddr, sinkHTTP string
	// smtpAddr is where SMTP clients reach the sink: the raw and naive
	// baselines, and the profiles Outbound sends with. It is the sink
	// itself, or for figure 6 a delaying proxy in front of it.
	smtpAddr string
	rtt      time.Duration // the round trip figure 6 puts between clients and the sink
	http     *http.Client
	procs    []*proc
	out      io.Writer
	profile  string // where run 2 writes the service's CPU profile, if set
	repeat   int    // runs of each repeated figure
}

// servers are the bench's own servers, each run as a child process
// ("outbound-bench NAME ARGS...") so that its CPU time is its own.
var servers = map[string]func(args []string) error{
	"sink":      func(a []string) error { return runSink(a[0], a[1], a[2]) },
	"smtpfloor": func(a []string) error { return runSMTPFloor(a[0], a[1], a[2]) },
	"httpfloor": func(a []string) error { return runHTTPFloor(a[0]) },
}

func main() {
	if len(os.Args) > 1 {
		if serve, ok := servers[os.Args[1]]; ok {
			if err := serve(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
				os.Exit(1)
			}
			return
		}
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "outbound-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 10000, "messages for the delivery runs")
	c := flag.Int("c", 32, "concurrent HTTP requests")
	conns := flag.Int("conns", 8, "SMTP connections per account (Outbound's cap, and the raw client's)")
	quick := flag.Bool("quick", false, "smaller runs")
	repeat := flag.Int("repeat", 3, "runs of figures 1, 1b, 2, 2b and 4a; the median and the range are printed")
	bin := flag.String("outbound", "", "the outbound binary (default: build ./cmd/outbound)")
	only := flag.String("only", "", "run only: accept, delivery (with the raw and naive rates), scaling (delivery, then 4a and 4b), distance (6), or submission (7)")
	sessions := flag.Int("sessions", 8, "concurrent SMTP sessions of figure 7, each sending its share over one connection")
	rtt := flag.Duration("rtt", 10*time.Millisecond, "the round trip figure 6 adds between the SMTP clients and the sink")
	profile := flag.String("profile", "", "write CPU profiles of the service during runs 2, 2b, 1, 1b and 4a (this file, .2b, .accept, .batch, .100, .10000) and its allocations in 2, 2b and 4a (.allocs, .2b.allocs, .100.allocs, .10000.allocs)")
	flag.Parse()
	if *quick {
		*n = 2000
	}
	dir, err := os.MkdirTemp("", "outbound-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{dir: dir, conns: *conns, out: os.Stdout, pin: runtime.NumCPU() >= 2 && hasTaskset(), profile: *profile, repeat: max(1, *repeat), rtt: *rtt,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *c * 2}, Timeout: time.Minute}}
	defer func() {
		for _, p := range b.procs {
			p.stop()
		}
	}()
	if b.outbound = *bin; b.outbound == "" {
		b.outbound = filepath.Join(dir, "outbound")
		if out, err := exec.Command("go", "build", "-o", b.outbound, "./cmd/outbound").CombinedOutput(); err != nil {
			return fmt.Errorf("build outbound (run from the repository root): %v\n%s", err, out)
		}
	}
	if b.pin {
		// The load generator (this process, every thread) and the sink
		// take CPU 1; the service and Redis get CPU 0.
		if out, err := exec.Command("taskset", "-a", "-p", "-c", loadCPU, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			return fmt.Errorf("taskset: %v: %s", err, out)
		}
	}
	if err := b.setup(); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "outbound-bench: %d CPUs, pinned=%v, %d messages, %d HTTP clients, %d SMTP connections per account\n\n",
		runtime.NumCPU(), b.pin, *n, *c, *conns)
	switch *only {
	case "":
		return b.runAll(*n, *c, *quick, *sessions)
	case "accept":
		return b.runAccept(*n, *c, *quick)
	case "delivery":
		_, _, err := b.runDelivery(*n, *c)
		return err
	case "distance":
		return b.runDistance(*c)
	case "submission":
		return b.runSubmission(*n, *sessions)
	case "scaling":
		rate1, naiveRate, err := b.runDelivery(*n, *c)
		if err != nil {
			return err
		}
		return b.runScaling(*n, *c, *quick, rate1, naiveRate)
	}
	return fmt.Errorf("-only %q: want accept, delivery, scaling, distance or submission", *only)
}

func hasTaskset() bool { _, err := exec.LookPath("taskset"); return err == nil }

// setup makes keys and starts the sink.
func (b *bench) setup() error {
	b.secretKey = seal.NewKey()
	adminToken, adminKey, _ := apikey.Generate("bench-admin", apikey.ScopeAdmin)
	sendToken, sendKey, _ := apikey.Generate("bench-send", apikey.ScopeSend)
	b.adminToken, b.sendToken, b.keys = adminToken, sendToken, adminKey.Entry()+","+sendKey.Entry()
	b.sinkAddr = "127.0.0.1:" + strconv.Itoa(freePort())
	b.smtpAddr = b.sinkAddr
	b.sinkHTTP = "127.0.0.1:" + strconv.Itoa(freePort())
	b.caFile = filepath.Join(b.dir, "sink.pem")
	self, _ := os.Executable()
	if _, err := b.start("sink", loadCPU, os.Environ(), self, "sink", b.sinkAddr, b.sinkHTTP, b.caFile); err != nil {
		return err
	}
	for range 100 {
		if pem, err := os.ReadFile(b.caFile); err == nil && len(pem) > 0 {
			b.caPEM = pem
			time.Sleep(50 * time.Millisecond)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the sink did not start")
}

func tenants(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// deliveryResult is what one delivery run measured.
type deliveryResult struct {
	rate                 float64       // messages per second, first POST to last counted at the sink
	serviceCPU, redisCPU time.Duration // per message
	peakRSS              int64         // the service's, in bytes
}

// How the tenants of a delivery run reach the sink.
type accounts int

const (
	ownAccounts  accounts = iota // each tenant a profile with a login of its own
	sameMailbox                  // each tenant a profile, all with the same login (still an account each)
	defaultRelay                 // no profiles: every tenant on the platform's relay, one account for all
)

// delivery posts n messages over tenants and times first POST to last
// message counted at the sink. With profile set, it writes the service's
// CPU profile over the run there. batched posts them through POST
// /v1/messages/batch (one tenant only).
func (b *bench) delivery(n, c int, tenantIDs []string, via accounts, profile string, batched bool) (deliveryResult, error) {
	redisProc, rdb, err := b.startRedis()
	if err != nil {
		return deliveryResult{}, err
	}
	defer redisProc.stop()
	defer rdb.Close()
	debugAddr, extra := debugListen(profile)
	if via == defaultRelay {
		extra = append(extra, "OUTBOUND_DEFAULT_RELAY=smtps://relay%40bench.example:password@"+b.smtpAddr,
			"OUTBOUND_DEFAULT_FROM=Bench <no-reply@bench.example>")
	}
	svc, url, err := b.startOutbound(rdb.Options().Addr, 32, extra...)
	if err != nil {
		return deliveryResult{}, err
	}
	defer svc.stop()
	if via != defaultRelay {
		if err := b.putProfiles(url, tenantIDs, via == sameMailbox); err != nil {
			return deliveryResult{}, err
		}
	}
	base := b.sinkCounts().Messages
	svc0, redis0 := svc.cpu(), redisProc.cpu()
	start := time.Now()
	var end time.Time
	deliver := func() (err error) {
		end, err = b.waitSink(base+int64(n), 5*time.Minute)
		return err
	}
	if batched {
		if _, err := b.postBatches(url, n, batchSize, batchConcurrency, tenantIDs[0]); err != nil {
			return deliveryResult{}, err
		}
		// Batched posting is over in a fraction of the run: the profile
		// is of delivering alone (with -n large enough to outlast it).
		err = whileProfiling(debugAddr, profile, 3, deliver)
	} else {
		err = whileProfiling(debugAddr, profile, 3, func() error {
			if _, _, err := b.post(url, n, c, tenantIDs); err != nil {
				return err
			}
			return deliver()
		})
	}
	if err != nil {
		return deliveryResult{}, err
	}
	res := deliveryResult{rate: float64(n) / end.Sub(start).Seconds(), peakRSS: svc.peakRSS(),
		serviceCPU: (svc.cpu() - svc0) / time.Duration(n), redisCPU: (redisProc.cpu() - redis0) / time.Duration(n)}
	if profile != "" {
		// Every allocation since the service started, which is this run.
		if err := fetchProfile("http://"+debugAddr+"/debug/pprof/allocs", profile+".allocs"); err != nil {
			return res, fmt.Errorf("allocation profile: %w", err)
		}
	}
	return res, nil
}

// debugListen is the address of the service's pprof endpoint and the
// variable that opens it, when a profile is wanted.
func debugListen(profile string) (addr string, env []string) {
	if profile == "" {
		return "", nil
	}
	addr = "127.0.0.1:" + strconv.Itoa(freePort())
	return addr, []string{"OUTBOUND_DEBUG_LISTEN=" + addr}
}

// whileProfiling runs run; with file set, it also writes the service's
// CPU profile over the first seconds of the run there.
func whileProfiling(debugAddr, file string, seconds int, run func() error) error {
	if file == "" {
		return run()
	}
	profiled := make(chan error, 1)
	go func() {
		profiled <- fetchProfile(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, seconds), file)
	}()
	err := run()
	if perr := <-profiled; err == nil && perr != nil {
		err = fmt.Errorf("CPU profile: %w", perr)
	}
	return err
}

func fetchProfile(url, path string) error {
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", url, res.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b *bench) runAll(n, c int, quick bool, sessions int) error {
	if err := b.runAccept(n, c, quick); err != nil {
		return err
	}
	rate1, naiveRate, err := b.runDelivery(n, c)
	if err != nil {
		return err
	}
	if err := b.runScaling(n, c, quick, rate1, naiveRate); err != nil {
		return err
	}
	if err := b.runDistance(c); err != nil {
		return err
	}
	return b.runSubmission(n, sessions)
}

// runAccept measures figures 1, 4c and 5b.
func (b *bench) runAccept(n, c int, quick bool) error {
	p := func(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }

	// 1. Accept rate, with no workers so delivery does not compete.
	redisProc, rdb, err := b.startRedis()
	if err != nil {
		return err
	}
	debugAddr, extra := debugListen(b.profile)
	svc, url, err := b.startOutbound(rdb.Options().Addr, 0, extra...)
	if err != nil {
		return err
	}
	if err := b.putProfiles(url, []string{"acme"}, true); err != nil {
		return err
	}
	latencySample := 2000
	_, lat0, err := b.post(url, latencySample, c, []string{"acme"})
	if err != nil {
		return err
	}
	// The first of the runs is profiled, when asked.
	firstRun := func(i int, suffix string) string {
		if i > 0 || b.profile == "" {
			return ""
		}
		return b.profile + suffix
	}
	var rates, xadds, ratios, svcCPU, redisCPU, floors, floorRatios sample
	var batchRates, batchRatios, batchSvcCPU, batchRedisCPU sample
	var lat latencies
	for i := range b.repeat {
		svc0, redis0 := svc.cpu(), redisProc.cpu()
		var rate float64
		var l latencies
		if err := whileProfiling(debugAddr, firstRun(i, ".accept"), 3, func() (err error) {
			rate, l, err = b.post(url, n, c, []string{"acme"})
			return err
		}); err != nil {
			return err
		}
		svcCPU = append(svcCPU, (svc.cpu()-svc0).Seconds()/float64(n))
		redisCPU = append(redisCPU, (redisProc.cpu()-redis0).Seconds()/float64(n))
		svc0, redis0 = svc.cpu(), redisProc.cpu()
		var batchRate float64
		if err := whileProfiling(debugAddr, firstRun(i, ".batch"), 1, func() (err error) {
			batchRate, err = b.postBatches(url, n, batchSize, batchConcurrency, "acme")
			return err
		}); err != nil {
			return err
		}
		batchSvcCPU = append(batchSvcCPU, (svc.cpu()-svc0).Seconds()/float64(n))
		batchRedisCPU = append(batchRedisCPU, (redisProc.cpu()-redis0).Seconds()/float64(n))
		x := xadd(rdb, n, c)
		floor, err := b.httpFloor(n, c)
		if err != nil {
			return err
		}
		rates, xadds, ratios = append(rates, rate), append(xadds, x), append(ratios, rate/x)
		batchRates, batchRatios = append(batchRates, batchRate), append(batchRatios, batchRate/x)
		floors, floorRatios = append(floors, floor), append(floorRatios, rate/floor)
		lat = append(lat, l...)
	}
	p("1. accept: %s (p50 %v, p99 %v) | bare XADD %s | ratio %s\n",
		rates.rate(), lat.pct(.5).Round(time.Microsecond), lat.pct(.99).Round(time.Microsecond), xadds.rate(), ratios.ratio())
	p("   CPU per accepted message: service %s + Redis %s\n", svcCPU.micros(), redisCPU.micros())
	p("   HTTP floor (net/http, JSON decoded, nothing stored) %s | accept is %s of it\n", floors.rate(), floorRatios.ratio())
	p("1b. accept in batches (POST /v1/messages/batch, %d messages each, %d at a time): %s | ratio to bare XADD %s\n",
		batchSize, batchConcurrency, batchRates.rate(), batchRatios.ratio())
	p("   CPU per accepted message: service %s + Redis %s\n", batchSvcCPU.micros(), batchRedisCPU.micros())

	// 4c. Accept latency with a deep queue, and Redis memory per message.
	deep := 100000
	if quick {
		deep = 20000
	}
	mem0, _ := usedMemory(rdb)
	queued0, _ := rdb.XLen(context.Background(), "outbound:{q0}:stream").Result()
	if _, _, err := b.post(url, deep, c, []string{"acme"}); err != nil {
		return err
	}
	mem1, _ := usedMemory(rdb)
	queued1, _ := rdb.XLen(context.Background(), "outbound:{q0}:stream").Result()
	_, latDeep, err := b.post(url, latencySample, c, []string{"acme"})
	if err != nil {
		return err
	}
	p("4c. accept latency: p50 %v / p99 %v with %d queued, p50 %v / p99 %v with %d queued\n",
		lat0.pct(.5).Round(time.Microsecond), lat0.pct(.99).Round(time.Microsecond), 0,
		latDeep.pct(.5).Round(time.Microsecond), latDeep.pct(.99).Round(time.Microsecond), queued1)
	p("5b. Redis memory per queued message: %.0f bytes (1 KB body)\n", float64(mem1-mem0)/float64(queued1-queued0))
	svc.stop()
	redisProc.stop()
	return nil
}

// runDelivery measures figures 2 and 5a and the CPU per message, and
// returns the delivery rate and the naive rate.
func (b *bench) runDelivery(n, c int) (float64, float64, error) {
	p := func(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }
	// 2. Delivery, one tenant, and the raw SMTP rate over as many
	// connections, run by run.
	var rates, raws, ratios, cpus, svcCPU, redisCPU, rawCPUs, cpuRatios sample
	var batchRates, batchRatios, batchCPUs, batchCPURatios sample
	var rss int64
	for i := range b.repeat {
		profile := ""
		if i == 0 {
			profile = b.profile
		}
		d, err := b.delivery(n, c, []string{"acme"}, sameMailbox, profile, false)
		if err != nil {
			return 0, 0, err
		}
		raw, rawCPU, err := b.raw(n, b.conns)
		if err != nil {
			return 0, 0, err
		}
		batchProfile := ""
		if profile != "" {
			batchProfile = profile + ".2b"
		}
		db, err := b.delivery(n, c, []string{"acme"}, sameMailbox, batchProfile, true)
		if err != nil {
			return 0, 0, err
		}
		dbCPU := db.serviceCPU + db.redisCPU
		batchRates, batchRatios = append(batchRates, db.rate), append(batchRatios, db.rate/raw)
		batchCPUs, batchCPURatios = append(batchCPUs, dbCPU.Seconds()), append(batchCPURatios, float64(dbCPU)/float64(rawCPU))
		cpu := d.serviceCPU + d.redisCPU
		rates, raws, ratios = append(rates, d.rate), append(raws, raw), append(ratios, d.rate/raw)
		cpus, svcCPU, redisCPU = append(cpus, cpu.Seconds()), append(svcCPU, d.serviceCPU.Seconds()), append(redisCPU, d.redisCPU.Seconds())
		rawCPUs, cpuRatios = append(rawCPUs, rawCPU.Seconds()), append(cpuRatios, float64(cpu)/float64(rawCPU))
		rss = max(rss, d.peakRSS)
	}
	rate1 := rates.median()
	p("2. delivery: %s | raw go-smtp over %d reused connections %s | ratio %s\n", rates.rate(), b.conns, raws.rate(), ratios.ratio())
	p("5a. service peak RSS during run 2: %.1f MiB\n", float64(rss)/(1<<20))
	p("    CPU per message: service + Redis %s (service %s, Redis %s) | bare go-smtp client %s | ratio %s\n",
		cpus.micros(), svcCPU.micros(), redisCPU.micros(), rawCPUs.micros(), cpuRatios.ratio())
	p("2b. delivery, posted through POST /v1/messages/batch: %s | ratio to raw %s | CPU per message %s | ratio to the bare client %s\n",
		batchRates.rate(), batchRatios.ratio(), batchCPUs.micros(), batchCPURatios.ratio())

	// 3. Naive baseline.
	naiveN := min(n, 2000)
	naiveRate, err := b.naive(naiveN, b.conns)
	if err != nil {
		return 0, 0, err
	}
	p("3. naive (new TLS connection + AUTH per message): %s | Outbound is %.1fx\n", thousands(naiveRate)+"/s", rate1/naiveRate)
	return rate1, naiveRate, nil
}

// runDistance measures figure 6: the sink a round trip of b.rtt away
// (internal/netdelay), where waiting for replies, not CPU, bounds a
// session. Outbound pipelines and sends each message with BDAT; go-smtp's
// SendMail, the raw baseline here, sends one command at a time.
func (b *bench) runDistance(c int) error {
	proxy, err := netdelay.Start(b.sinkAddr, b.rtt/2)
	if err != nil {
		return err
	}
	defer proxy.Close()
	b.smtpAddr = proxy.Addr()
	defer func() { b.smtpAddr = b.sinkAddr }()
	const n = 2000
	d, err := b.delivery(n, c, []string{"acme"}, sameMailbox, "", false)
	if err != nil {
		return err
	}
	raw, _, err := b.raw(n/2, b.conns)
	if err != nil {
		return err
	}
	naive, err := b.naive(n/5, b.conns)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "6. the sink %v away: delivery %s/s | raw go-smtp over %d reused connections %s/s | naive %s/s | Outbound is %.1fx raw, %.1fx naive\n",
		b.rtt, thousands(d.rate), b.conns, thousands(raw), thousands(naive), d.rate/raw, d.rate/naive)
	return nil
}

// runScaling measures figures 4a and 4b against the one-tenant rate.
func (b *bench) runScaling(n, c int, quick bool, rate1, naiveRate float64) error {
	p := func(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }

	// 4a. Many tenants sharing one account, each next to a one-tenant run
	// made just before it. The one account tenants share is the default
	// relay: sessions a tenant logged in are never lent to another, so
	// tenants whose profiles name the same mailbox are accounts apart.
	counts := []int{100, 10000}
	if quick {
		counts = []int{100, 1000}
	}
	shared := make([]sample, len(counts))
	cpus := make([]sample, len(counts)+1) // per message: one tenant, then each count
	for r := range b.repeat {
		one, err := b.delivery(n, c, []string{"acme"}, defaultRelay, "", false)
		if err != nil {
			return err
		}
		cpus[0] = append(cpus[0], (one.serviceCPU + one.redisCPU).Seconds())
		for i, count := range counts {
			profile := ""
			if r == 0 && b.profile != "" {
				profile = b.profile + "." + strconv.Itoa(count)
			}
			d, err := b.delivery(n, c, tenants("t", count), defaultRelay, profile, false)
			if err != nil {
				return err
			}
			shared[i] = append(shared[i], d.rate/one.rate)
			cpus[i+1] = append(cpus[i+1], (d.serviceCPU + d.redisCPU).Seconds())
		}
	}
	for i, count := range counts {
		p("4a. %d tenants sharing the default relay: %s of one tenant's rate | CPU per message %s, one tenant %s\n",
			count, shared[i].ratio(), cpus[i+1].micros(), cpus[0].micros())
	}
	// 4b. 1,000 tenants with their own accounts: every login is needed.
	own := 1000
	if quick {
		own = 200
	}
	d, err := b.delivery(own*5, c, tenants("own", own), ownAccounts, "", false)
	if err != nil {
		return err
	}
	p("4b. %d tenants with their own accounts, 5 messages each: %s | naive %s | %.1fx\n", own, thousands(d.rate)+"/s",
		thousands(naiveRate)+"/s", d.rate/naiveRate)
	return nil
}

// usedMemory is Redis's used_memory.
func usedMemory(rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO")
}
