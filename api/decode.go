package api

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/validation"
)

// decodeJSON reads one JSON object into v. Unknown fields are refused (a
// misspelt "attachements" must not silently drop the invoice), as are
// names in another case and names given twice (two readers of one body
// must not see two different messages); wrong types are named by field,
// and a body over the route's limit is a 413.
func decodeJSON(c echo.Context, v any) error {
	_, err := decodeJSONBody(c, v)
	return err
}

// decodeJSONBody is decodeJSON that also returns the body it read.
//
// It decodes with encoding/json/v2 (go-json-experiment/json, the module
// the standard library adopts it from), which scans a body once where v1
// scans it twice (BenchmarkDecodeMessage; docs/measurements.md, "Decoding
// request bodies"), with a nesting limit, strict UTF-8 and no duplicate
// names.
func decodeJSONBody(c echo.Context, v any) ([]byte, error) {
	if err := checkContentType(c); err != nil {
		return nil, err
	}
	r := c.Request()
	var buf bytes.Buffer
	// ContentLength is the client's word: it sizes the first allocation
	// only up to a small bound; the route's limit applies while reading.
	buf.Grow(int(min(max(r.ContentLength, 0), 64<<10)))
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return nil, jsonProblem(err)
	}
	body := buf.Bytes()
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, problem(codeInvalidJSON, "the body is empty")
	}
	if err := decodeStrict(body, v); err != nil {
		return nil, err
	}
	return body, nil
}

// decodeStrict decodes one JSON value into v as decodeJSON does, with the
// same refusals; a batch decodes each of its messages with it.
func decodeStrict(data []byte, v any) error {
	if err := json.Unmarshal(data, v, json.RejectUnknownMembers(true)); err != nil {
		return jsonProblem(err)
	}
	return nil
}

func checkContentType(c echo.Context) error {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return problem(codeUnsupportedMediaType, "send Content-Type: application/json")
		}
	}
	return nil
}

// bodyIsEmpty reports whether the request carries no body (or only
// whitespace), reading at most a little of it; the rest stays readable.
func bodyIsEmpty(c echo.Context) (bool, error) {
	r := c.Request()
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return true, nil
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(r.Body, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, jsonProblem(err)
	}
	head = head[:n]
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(head), r.Body))
	return len(bytes.TrimSpace(head)) == 0 && n < 512, nil
}

func jsonProblem(err error) error {
	var tooLarge *http.MaxBytesError
	var semantic *json.SemanticError
	var syntactic *jsontext.SyntacticError
	switch {
	case errors.As(err, &tooLarge):
		return problem(codePayloadTooLarge, fmt.Sprintf("the request body is over the limit of %d bytes", tooLarge.Limit))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem(codeInvalidJSON, "the body ends before the JSON does")
	case errors.As(err, &semantic):
		var verr validation.Error
		field := fieldPath(semantic.JSONPointer)
		if errors.Is(semantic.Err, json.ErrUnknownName) {
			verr.Add(field, "unknown_field", "no such field")
		} else {
			verr.Add(field, "invalid_type", "must be "+jsonTypeName(semantic.GoType))
		}
		return &verr
	case errors.As(err, &syntactic) && errors.Is(err, jsontext.ErrDuplicateName):
		return problem(codeInvalidJSON, fmt.Sprintf("%s appears twice", fieldPath(syntactic.JSONPointer)))
	case errors.As(err, &syntactic):
		return problem(codeInvalidJSON, fmt.Sprintf("malformed JSON (%s) at byte %d", syntactic.Err, syntactic.ByteOffset))
	}
	return problem(codeInvalidJSON, "the body is not valid JSON")
}

// fieldPath writes a JSON pointer ("/to/0/email") as the field paths of
// validation errors ("to[0].email"); the empty pointer is the whole body.
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if tok != "" && strings.Trim(tok, "0123456789") == "" {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "(body)"
	}
	return b.String()
}

var (
	timeType            = reflect.TypeFor[time.Time]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// jsonTypeName says what JSON a field of type t takes.
func jsonTypeName(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == nil:
		return "of another type"
	case t == timeType:
		return "a date and time in RFC 3339 form"
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a number"
}
