package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
)

func TestStringNeverPrints(t *testing.T) {
	const pw = "abcdefghijklmnop"
	s := New(pw)
	type wrapper struct {
		Password String
		P        *String
	}
	w := wrapper{Password: s, P: &s}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outputs = append(outputs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, w))
	}
	js, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(js))

	var logBuf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
	logger.Info("x", "password", s, "wrapped", w)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("x", "password", s)
	outputs = append(outputs, logBuf.String())

	for _, out := range outputs {
		if strings.Contains(out, pw) || strings.Contains(out, fmt.Sprintf("%x", pw)) {
			t.Errorf("credential leaked: %s", out)
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("output shows neither the credential nor the redaction marker: %s", out)
		}
	}
	if s.Reveal() != pw {
		t.Fatalf("Reveal = %q", s.Reveal())
	}
}

func TestUnmarshalJSON(t *testing.T) {
	decoders := map[string]func([]byte, any) error{
		"v1": json.Unmarshal,
		"v2": func(b []byte, v any) error { return jsonv2.Unmarshal(b, v) },
	}
	for name, unmarshal := range decoders {
		t.Run(name, func(t *testing.T) {
			var in struct{ Password String }
			if err := unmarshal([]byte(`{"Password":"p\u00e4ss word"}`), &in); err != nil {
				t.Fatal(err)
			}
			if in.Password.Reveal() != "päss word" {
				t.Fatalf("got %q", in.Password.Reveal())
			}
			if err := unmarshal([]byte(`{"Password":42}`), &in); err == nil {
				t.Fatal("number accepted as a password")
			}
		})
	}
}
