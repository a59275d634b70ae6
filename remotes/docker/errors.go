package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/remotes"
)

// RegistryError is one entry of a registry's error body:
// {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "…", "detail": …}]}.
type RegistryError struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

func (e RegistryError) String() string {
	s := e.Code
	if e.Message != "" {
		if s != "" {
			s += ": "
		}
		s += e.Message
	}
	return s
}

// StatusError is a response whose status the request did not expect.
// It wraps the errdefs kind of its status: 404 NotFound, 401
// remotes.ErrUnauthorized, 403 remotes.ErrDenied, 429 and 5xx Unavailable,
// 400 InvalidArgument, 405 and 501 NotImplemented, 409 Conflict.
type StatusError struct {
	Method     string
	URL        string // without query: upload URLs carry state
	StatusCode int
	Status     string
	Errors     []RegistryError
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "unexpected status %s from %s %s", e.Status, e.Method, e.URL)
	for i, re := range e.Errors {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(re.String())
	}
	return b.String()
}

// Unwrap returns the error kind of the status.
func (e *StatusError) Unwrap() error {
	switch c := e.StatusCode; {
	case c == http.StatusNotFound:
		return errdefs.ErrNotFound
	case c == http.StatusUnauthorized:
		return remotes.ErrUnauthorized
	case c == http.StatusForbidden:
		return remotes.ErrDenied
	case c == http.StatusTooManyRequests, c >= 500 && c != http.StatusNotImplemented:
		return errdefs.ErrUnavailable
	case c == http.StatusBadRequest:
		return errdefs.ErrInvalidArgument
	case c == http.StatusMethodNotAllowed, c == http.StatusNotImplemented:
		return errdefs.ErrNotImplemented
	case c == http.StatusConflict:
		return errdefs.ErrConflict
	case c == http.StatusPreconditionFailed, c == http.StatusRequestedRangeNotSatisfiable:
		return errdefs.ErrFailedPrecondition
	}
	return errdefs.ErrUnknown
}

// newStatusError reads (a bounded part of) resp's body into a
// StatusError and closes it.
func newStatusError(resp *http.Response) *StatusError {
	defer resp.Body.Close()
	e := &StatusError{StatusCode: resp.StatusCode, Status: resp.Status}
	if resp.Request != nil {
		e.Method = resp.Request.Method
		e.URL = redactURL(resp.Request.URL)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Errors []RegistryError `json:"errors"`
	}
	if json.Unmarshal(b, &body) == nil {
		e.Errors = body.Errors
	} else if s := strings.TrimSpace(string(b)); s != "" && resp.Request != nil && resp.Request.Method != http.MethodHead && len(s) < 200 && !strings.ContainsAny(s, "<>") {
		e.Errors = []RegistryError{{Message: s}}
	}
	return e
}

// redactURL drops the query (upload state, signed-URL tokens) and any
// user info from u for messages.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.RawQuery, c.ForceQuery, c.User, c.Fragment = "", false, nil, ""
	return c.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return redactURL(u)
}

// transportError is a request that got no response; it may be retried.
type transportError struct {
	method, url string
	err         error
}

func (e *transportError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.method, e.url, e.err)
}

func (e *transportError) Unwrap() []error { return []error{e.err, errdefs.ErrUnavailable} }

// retryable reports whether err is worth trying again: no response, or
// a 429 or 5xx.
func retryable(err error) bool {
	var te *transportError
	if errors.As(err, &te) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return retryableStatus(se.StatusCode)
	}
	return false
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
