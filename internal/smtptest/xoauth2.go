package smtptest

import (
	"bytes"
	"errors"

	"github.com/emersion/go-smtp"
)

const mechXOAuth2 = "XOAUTH2"

// xoauth2Server is the server side of Google's and Microsoft's XOAUTH2:
// the client sends "user=<name>\x01auth=Bearer <token>\x01\x01". A bad
// token is answered, as Gmail does, with a 334 challenge holding a JSON
// error; the client replies with an empty line and then gets 535.
type xoauth2Server struct {
	authenticate func(username, token string) error
	failed       error
}

func (s *xoauth2Server) Next(response []byte) ([]byte, bool, error) {
	if s.failed != nil {
		return nil, true, s.failed
	}
	if response == nil {
		return []byte{}, false, nil // no initial response: ask for it
	}
	user, token, ok := parseXOAuth2(response)
	if !ok {
		return nil, true, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "malformed XOAUTH2 response"}
	}
	if err := s.authenticate(user, token); err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 535 {
			return nil, true, err
		}
		s.failed = err
		return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	return nil, true, nil
}

func parseXOAuth2(b []byte) (user, token string, ok bool) {
	for _, field := range bytes.Split(b, []byte{1}) {
		switch {
		case bytes.HasPrefix(field, []byte("user=")):
			user = string(field[len("user="):])
		case bytes.HasPrefix(field, []byte("auth=Bearer ")):
			token = string(field[len("auth=Bearer "):])
		}
	}
	return user, token, user != "" && token != ""
}
