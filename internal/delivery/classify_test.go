package delivery

import (
	"testing"
	"time"

	"github.com/outbound-mail/outbound/internal/transport"
)

func TestBackoff(t *testing.T) {
	s := &Service{cfg: Config{RetryBase: 30 * time.Second}}
	prev := time.Duration(0)
	for n := 1; n <= 12; n++ {
		d := s.backoff(n)
		want := min(30*time.Second<<(n-1), time.Hour)
		if d < want*8/10 || d > want*12/10 {
			t.Errorf("backoff(%d) = %v, want %v ±20%%", n, d, want)
		}
		if n > 1 && n < 8 && d < prev/2 {
			t.Errorf("backoff(%d) = %v fell from %v", n, d, prev)
		}
		prev = d
	}
}

func TestClassification(t *testing.T) {
	cases := []struct {
		name           string
		err            transport.Error
		quota, profile bool
		permanent      bool
	}{
		{"gmail daily quota", transport.Error{Stage: transport.StageData, SMTPCode: 550, EnhancedCode: "5.4.5",
			Message: "Daily user sending limit exceeded."}, true, false, true},
		{"sending quota wording", transport.Error{Stage: transport.StageMail, SMTPCode: 550, EnhancedCode: "5.7.1",
			Message: "Daily user sending quota exceeded"}, true, false, true},
		{"user unknown", transport.Error{Stage: transport.StageRcpt, SMTPCode: 550, EnhancedCode: "5.1.1",
			Message: "no such user"}, false, false, true},
		{"greylisted", transport.Error{Stage: transport.StageRcpt, SMTPCode: 451, EnhancedCode: "4.7.1",
			Message: "try again later"}, false, false, false},
		{"refused login", transport.Error{Stage: transport.StageAuth, Code: transport.CodeAuthFailed, SMTPCode: 535,
			EnhancedCode: "5.7.8"}, false, true, true},
		{"unreachable", transport.Error{Stage: transport.StageConnect, Code: transport.CodeConnectFailed}, false, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if isQuota(&tc.err) != tc.quota || isProfileFault(&tc.err) != tc.profile || tc.err.Permanent() != tc.permanent {
				t.Errorf("quota %v profile %v permanent %v", isQuota(&tc.err), isProfileFault(&tc.err), tc.err.Permanent())
			}
		})
	}
}
