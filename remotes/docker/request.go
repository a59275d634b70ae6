package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-containers/berth/pkg/log"
)

// RetryPolicy bounds how often a request is sent again after no answer,
// a 429 or a 5xx: Attempts tries in all, waiting MinBackoff, doubling up
// to MaxBackoff (or what Retry-After asks, up to MaxBackoff) between them.
type RetryPolicy struct {
	Attempts   int
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// DefaultRetryPolicy: five tries over about six seconds.
var DefaultRetryPolicy = RetryPolicy{Attempts: 5, MinBackoff: 200 * time.Millisecond, MaxBackoff: 4 * time.Second}

func (p RetryPolicy) backoff(attempt int, retryAfter string) time.Duration {
	d := p.MinBackoff << (attempt - 1)
	if d > p.MaxBackoff || d <= 0 {
		d = p.MaxBackoff
	}
	if s, err := strconv.Atoi(retryAfter); err == nil && s >= 0 {
		if ra := time.Duration(s) * time.Second; ra < p.MaxBackoff {
			d = max(d, ra)
		} else {
			d = p.MaxBackoff
		}
	}
	return d
}

// request is one registry call.
type request struct {
	method string
	host   RegistryHost
	url    string
	header http.Header
	// body opens the body afresh for each try; nil for none.
	body func() (io.Reader, error)
	size int64
	// scopes are the token scopes the call needs.
	scopes []string
	// once: the body cannot be sent twice (a PATCH the server may have
	// half-applied); the caller starts over instead.
	once bool
}

// do sends req, authenticating as challenged and retrying as the policy
// allows. A response is returned whatever its status, except a 401 that
// authenticating did not cure, which is an error; the caller checks the
// status and closes the body.
func (r *Resolver) do(ctx context.Context, req *request) (*http.Response, error) {
	authTried := false
	for attempt := 1; ; attempt++ {
		resp, err := r.send(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var te *transportError
			if errors.As(err, &te) && !req.once && attempt < r.retry.Attempts {
				d := r.retry.backoff(attempt, "")
				log.G(ctx).WithError(err).WithField("attempt", attempt).Debugf("registry request failed; retrying in %v", d)
				if err := sleep(ctx, d); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			if authTried {
				return nil, r.auth.unauthorized(req.host, newStatusError(resp))
			}
			ok, err := r.auth.challenge(ctx, req.host, resp, req.scopes)
			if err != nil {
				drain(resp)
				return nil, fmt.Errorf("%s %s: %w", req.method, redact(req.url), err)
			}
			if !ok {
				return nil, r.auth.unauthorized(req.host, newStatusError(resp))
			}
			drain(resp)
			authTried = true
			attempt-- // answering a challenge is not a retry
			continue
		case retryableStatus(resp.StatusCode) && !req.once && attempt < r.retry.Attempts:
			d := r.retry.backoff(attempt, resp.Header.Get("Retry-After"))
			log.G(ctx).WithField("status", resp.Status).WithField("url", redact(req.url)).WithField("attempt", attempt).Debugf("registry busy; retrying in %v", d)
			drain(resp)
			if err := sleep(ctx, d); err != nil {
				return nil, err
			}
			continue
		}
		return resp, nil
	}
}

// send makes one try.
func (r *Resolver) send(ctx context.Context, req *request) (*http.Response, error) {
	var body io.Reader
	if req.body != nil {
		b, err := req.body()
		if err != nil {
			return nil, err
		}
		body = b
	}
	hreq, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.method, redact(req.url), err)
	}
	if body != nil {
		hreq.ContentLength = req.size
		if req.size == 0 {
			hreq.Body = http.NoBody
		}
	}
	for k, v := range r.header {
		hreq.Header[k] = append([]string(nil), v...)
	}
	for k, v := range req.host.Header {
		hreq.Header[k] = append([]string(nil), v...)
	}
	for k, v := range req.header {
		hreq.Header[k] = append([]string(nil), v...)
	}
	if hreq.Header.Get("Authorization") == "" {
		if err := r.auth.authorize(ctx, req.host, hreq, req.scopes); err != nil {
			return nil, fmt.Errorf("%s %s: %w", req.method, redact(req.url), err)
		}
	}
	client := req.host.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, &transportError{method: req.method, url: redact(req.url), err: err}
	}
	return resp, nil
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
