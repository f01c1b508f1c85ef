package systemtest

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/smtptest"
)

// longRun is set (OUTBOUND_TEST_LONG=1) for the long variants of the
// reliability tests; CI runs the short ones.
var longRun = os.Getenv("OUTBOUND_TEST_LONG") == "1"

// faults is a misbehaving SMTP server's dice, shared by its hooks.
type faults struct {
	mu       sync.Mutex
	rng      *rand.Rand
	authDown time.Time // AUTH is refused until then
	injected map[string]int
}

func (f *faults) roll(p float64, name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() < p {
		f.injected[name]++
		return true
	}
	return false
}

func (f *faults) hooks() smtptest.Hooks {
	return smtptest.Hooks{
		Auth: func(string) *smtp.SMTPError {
			if time.Now().Before(f.authDown) {
				f.mu.Lock()
				f.injected["auth 535"]++
				f.mu.Unlock()
				return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Username and Password not accepted"}
			}
			return nil
		},
		Mail: func(string) *smtp.SMTPError {
			if f.roll(0.03, "mail 421") {
				return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Try again later, closing connection"}
			}
			return nil
		},
		Rcpt: func(string) *smtp.SMTPError {
			if f.roll(0.03, "rcpt 452") {
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Too many recipients"}
			}
			return nil
		},
		Data: func(smtptest.Message) *smtp.SMTPError {
			switch {
			case f.roll(0.05, "data 451"):
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure"}
			case f.roll(0.015, "data 550"):
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message rejected"}
			}
			return nil
		},
		DropMidData:   func(smtptest.Message) bool { return f.roll(0.02, "drop mid-DATA") },
		DropAfterData: func(smtptest.Message) bool { return f.roll(0.01, "drop after DATA") },
		Stall: func(stage string) time.Duration {
			if stage == smtptest.StageData && f.roll(0.005, "stall past timeout") {
				return 800 * time.Millisecond // the client waits 400ms
			}
			return 0
		},
	}
}

// TestMisbehavingServerLosesNothing drives messages through a server that
// answers 421/451/452/550 at random, drops connections mid-DATA and after
// it, stalls past the client's timeouts, and refuses every login for the
// first two seconds. Every message must end sent or (after a 5xx) failed;
// none may be lost or stuck; duplicates are counted and each must be
// explained by an attempt marked ambiguous.
func TestMisbehavingServerLosesNothing(t *testing.T) {
	total := 1000
	if longRun {
		total = 10000
	}
	f := &faults{rng: rand.New(rand.NewPCG(42, uint64(time.Now().UnixNano()))), injected: map[string]int{},
		authDown: time.Now().Add(2 * time.Second)}
	s := newSendSetup(t, smtptest.Options{Hooks: f.hooks()}, func(o *options) {
		o.workers, o.retryBase, o.retryMaxAge, o.smtpTimeout = 8, 50*time.Millisecond, 10*time.Minute, 400*time.Millisecond
	})
	s.putProfile(t, map[string]any{"rate_limit": map[string]int{"per_minute": 1000000, "per_day": 100000000}})

	start := time.Now()
	ids := make([]string, total)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < total; i += 8 {
				in := invoice()
				delete(in, "attachments")
				delete(in, "bcc")
				in["subject"] = "m-" + strconv.Itoa(i)
				r := s.post(t, in)
				if r.status != http.StatusAccepted {
					t.Errorf("POST %d: %d %s", i, r.status, r.body)
					return
				}
				ids[i] = r.json(t)["id"].(string)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	final := make([]map[string]any, total)
	deadline := time.Now().Add(3 * time.Minute)
	for pending := total; pending > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages still not final after 3 minutes", pending, total)
		}
		pending = 0
		for i, id := range ids {
			if final[i] != nil {
				continue
			}
			st := s.do("GET", "/v1/messages/"+id, s.sendToken, nil).json(t)
			if st["status"] == "sent" || st["status"] == "failed" {
				final[i] = st
			} else {
				pending++
			}
		}
		if pending > 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)

	copies := map[string]int{}
	for _, m := range s.account.Messages() {
		r, err := mail.CreateReader(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		subject, _ := r.Header.Subject()
		copies[subject]++
	}
	sent, failed, duplicates, ambiguous, attemptsTotal := 0, 0, 0, 0, 0
	for i, st := range final {
		subject := "m-" + strconv.Itoa(i)
		atts := attempts(st)
		attemptsTotal += len(atts)
		amb := 0
		for _, a := range atts {
			if a["ambiguous"] == true {
				amb++
			}
		}
		ambiguous += amb
		last := atts[len(atts)-1]
		switch st["status"] {
		case "sent":
			sent++
			if copies[subject] == 0 {
				t.Errorf("%s (%s) is sent but the server never got it", subject, ids[i])
			}
			if last["smtp_code"] != float64(250) {
				t.Errorf("%s sent, last attempt %v", subject, last)
			}
		case "failed":
			failed++
			if code, _ := last["smtp_code"].(float64); code < 500 {
				t.Errorf("%s failed without a 5xx: %v", subject, st)
			}
		}
		if extra := copies[subject] - 1; extra > 0 {
			duplicates += extra
			if extra > amb {
				t.Errorf("%s arrived %d times with only %d ambiguous attempts", subject, copies[subject], amb)
			}
		}
	}
	t.Logf("%d messages in %v: %d sent, %d failed (5xx), 0 lost; %d attempts, %d ambiguous, %d duplicates delivered; faults injected: %v",
		total, elapsed.Round(time.Millisecond), sent, failed, attemptsTotal, ambiguous, duplicates, f.injected)
	if sent+failed != total {
		t.Fatalf("lost %d messages", total-sent-failed)
	}
}
