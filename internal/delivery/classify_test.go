package delivery

import (
	"testing"

	"github.com/outbound-mail/outbound/internal/transport"
)

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
