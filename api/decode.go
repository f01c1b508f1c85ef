package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/outbound-mail/outbound/internal/validation"
)

// decodeJSON reads one JSON object into v. Unknown fields are refused (a
// misspelt "attachements" must not silently drop the invoice), wrong types
// are named by field, and a body over the route's limit is a 413.
func decodeJSON(c echo.Context, v any) error {
	if err := checkContentType(c); err != nil {
		return err
	}
	return decodeFrom(c.Request().Body, v)
}

// decodeJSONBody is decodeJSON that also returns the body it read.
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
	if err := decodeFrom(bytes.NewReader(buf.Bytes()), v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func checkContentType(c echo.Context) error {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return problem("unsupported_media_type", "send Content-Type: application/json")
		}
	}
	return nil
}

func decodeFrom(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return jsonProblem(err)
		}
		return problem("invalid_json", "the body must hold exactly one JSON object")
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
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &tooLarge):
		return problem("payload_too_large", fmt.Sprintf("the request body is over the limit of %d bytes", tooLarge.Limit))
	case errors.As(err, &typeErr):
		var verr validation.Error
		field := typeErr.Field
		if field == "" {
			field = "(body)"
		}
		verr.Add(field, "invalid_type", "must be "+jsonTypeName(typeErr.Type.Kind().String()))
		return &verr
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		var verr validation.Error
		verr.Add(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown_field", "no such field")
		return &verr
	case errors.As(err, &syntaxErr):
		return problem("invalid_json", fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset))
	case errors.Is(err, io.EOF):
		return problem("invalid_json", "the body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem("invalid_json", "the body ends before the JSON does")
	}
	return problem("invalid_json", "the body is not valid JSON")
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "a number"
}
