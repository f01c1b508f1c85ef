package api

import (
	"net/url"

	"github.com/labstack/echo/v4"
)

// pathParam is the named path parameter, percent-decoded (RFC 3986
// section 2.1), so that "a%40x.com" names the address a@x.com as clients
// mean it. Echo matches routes on the escaped path and returns parameters
// still escaped; every handler reads its parameters here instead. An
// escaped "/" stays inside its parameter. A value that does not decode is
// returned as it came, for the handler's own check to refuse (net/http
// answers 400 to such a request line before it gets here anyway).
func pathParam(c echo.Context, name string) string {
	v := c.Param(name)
	if d, err := url.PathUnescape(v); err == nil {
		return d
	}
	return v
}
