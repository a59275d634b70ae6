package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/log"
)

// CredentialsFunc returns the user name and secret for a registry host
// (host[:port] as contacted); "" and "" mean anonymous, and a secret
// without a user is an OAuth2 refresh token for bearer realms.
type CredentialsFunc func(host string) (user, secret string, err error)

// Auth follows a registry's WWW-Authenticate challenges: Basic sends the
// credentials with every request; Bearer trades them (or nothing, for
// anonymous access) for a token from the challenge's realm, one per
// scope set, cached until it expires. One Auth serves all requests of a
// resolver, so concurrent fetches share one token request.
type auth struct {
	creds CredentialsFunc

	mu    sync.Mutex
	hosts map[string]*hostAuth
}

type hostAuth struct {
	mu      sync.Mutex
	scheme  string // "basic" or "bearer"
	realm   string
	service string
	// extra scopes a challenge asked for beyond ours.
	extra []string
	creds struct {
		loaded       bool
		user, secret string
		err          error
	}
	tokens map[string]*tokenEntry
}

type tokenEntry struct {
	done    chan struct{}
	token   string
	expires time.Time
	err     error
}

func newAuth(creds CredentialsFunc) *auth {
	return &auth{creds: creds, hosts: map[string]*hostAuth{}}
}

func (a *auth) host(host string, create bool) *hostAuth {
	a.mu.Lock()
	defer a.mu.Unlock()
	ha := a.hosts[host]
	if ha == nil && create {
		ha = &hostAuth{tokens: map[string]*tokenEntry{}}
		a.hosts[host] = ha
	}
	return ha
}

// credentials loads (once) the credentials for host.
func (a *auth) credentials(ha *hostAuth, host string) (string, string, error) {
	ha.mu.Lock()
	defer ha.mu.Unlock()
	if !ha.creds.loaded {
		ha.creds.loaded = true
		if a.creds != nil {
			ha.creds.user, ha.creds.secret, ha.creds.err = a.creds(host)
			if ha.creds.err != nil {
				ha.creds.err = fmt.Errorf("credentials for %s: %w", host, ha.creds.err)
			}
		}
	}
	return ha.creds.user, ha.creds.secret, ha.creds.err
}

// user names who requests to host authenticate as, for messages.
func (a *auth) user(host string) string {
	ha := a.host(host, false)
	if ha == nil {
		return ""
	}
	ha.mu.Lock()
	defer ha.mu.Unlock()
	return ha.creds.user
}

// authorize adds what host's last challenge asked for to req.
func (a *auth) authorize(ctx context.Context, h RegistryHost, req *http.Request, scopes []string) error {
	ha := a.host(h.Host, false)
	if ha == nil {
		return nil
	}
	ha.mu.Lock()
	scheme := ha.scheme
	ha.mu.Unlock()
	switch scheme {
	case "basic":
		user, secret, err := a.credentials(ha, h.Host)
		if err != nil {
			return err
		}
		if user != "" || secret != "" {
			req.SetBasicAuth(user, secret)
		}
	case "bearer":
		tok, err := a.token(ctx, h, ha, scopes)
		if err != nil {
			return err
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	return nil
}

// challenge learns from a 401 how to authenticate to host. It returns
// false when there is nothing to try: no challenge we speak, or Basic
// without credentials. The token for scopes is dropped: it was refused.
func (a *auth) challenge(ctx context.Context, h RegistryHost, resp *http.Response, scopes []string) (bool, error) {
	chs := parseChallenges(resp.Header.Values("WWW-Authenticate"))
	var bearer, basic *challenge
	for i := range chs {
		switch chs[i].scheme {
		case "bearer":
			if bearer == nil {
				bearer = &chs[i]
			}
		case "basic":
			if basic == nil {
				basic = &chs[i]
			}
		}
	}
	ha := a.host(h.Host, true)
	switch {
	case bearer != nil:
		realm := bearer.params["realm"]
		if realm == "" {
			return false, fmt.Errorf("%s: bearer challenge without realm: %w", h.Host, errdefs.ErrInvalidArgument)
		}
		ha.mu.Lock()
		ha.scheme, ha.realm, ha.service = "bearer", realm, bearer.params["service"]
		ha.extra = nil
		for _, s := range strings.Fields(bearer.params["scope"]) {
			if !contains(scopes, s) {
				ha.extra = append(ha.extra, s)
			}
		}
		delete(ha.tokens, scopeKey(scopes))
		ha.mu.Unlock()
		log.G(ctx).WithField("host", h.Host).WithField("realm", realm).Debug("registry asks for a bearer token")
		return true, nil
	case basic != nil:
		user, secret, err := a.credentials(ha, h.Host)
		if err != nil {
			return false, err
		}
		if user == "" && secret == "" {
			return false, nil
		}
		ha.mu.Lock()
		ha.scheme = "basic"
		ha.mu.Unlock()
		return true, nil
	}
	return false, nil
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

func scopeKey(scopes []string) string {
	s := append([]string(nil), scopes...)
	sort.Strings(s)
	return strings.Join(s, " ")
}

// token returns a bearer token for scopes, fetching it if none is cached;
// concurrent callers wait for one fetch.
func (a *auth) token(ctx context.Context, h RegistryHost, ha *hostAuth, scopes []string) (string, error) {
	key := scopeKey(scopes)
	ha.mu.Lock()
	e := ha.tokens[key]
	if e != nil {
		select {
		case <-e.done:
			if e.err != nil || (!e.expires.IsZero() && time.Now().After(e.expires)) {
				e = nil
			}
		default:
		}
	}
	if e == nil {
		e = &tokenEntry{done: make(chan struct{})}
		ha.tokens[key] = e
		realm, service := ha.realm, ha.service
		all := append(append([]string(nil), scopes...), ha.extra...)
		ha.mu.Unlock()
		go func() {
			defer close(e.done)
			// The fetch outlives any one caller's cancellation; it is
			// bounded by its own timeout.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			e.token, e.expires, e.err = a.fetchToken(fctx, h, ha, realm, service, all)
			if e.err != nil {
				ha.mu.Lock()
				if ha.tokens[key] == e {
					delete(ha.tokens, key)
				}
				ha.mu.Unlock()
			}
		}()
	} else {
		ha.mu.Unlock()
	}
	select {
	case <-e.done:
		return e.token, e.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

type tokenResponse struct {
	Token       string    `json:"token"`
	AccessToken string    `json:"access_token"`
	ExpiresIn   int       `json:"expires_in"`
	IssuedAt    time.Time `json:"issued_at"`
}

// fetchToken asks realm for a token (Docker's token protocol: GET with
// service and scope, Basic credentials when there are any).
func (a *auth) fetchToken(ctx context.Context, h RegistryHost, ha *hostAuth, realm, service string, scopes []string) (string, time.Time, error) {
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", time.Time{}, fmt.Errorf("%s: bearer realm %q is not an http(s) URL: %w", h.Host, realm, errdefs.ErrInvalidArgument)
	}
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	user, secret, err := a.credentials(ha, h.Host)
	if err != nil {
		return "", time.Time{}, err
	}
	if user != "" {
		q.Set("account", user)
	}
	var req *http.Request
	if user == "" && secret != "" {
		// A secret without a user is a refresh token (containerd's ctr
		// --refresh): traded by OAuth2 POST to the realm.
		form := url.Values{}
		form.Set("grant_type", "refresh_token")
		form.Set("refresh_token", secret)
		form.Set("client_id", "berth-client")
		if service != "" {
			form.Set("service", service)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return "", time.Time{}, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	} else {
		u.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return "", time.Time{}, err
		}
		if user != "" || secret != "" {
			req.SetBasicAuth(user, secret)
		}
	}
	for k, v := range h.Header {
		if !strings.EqualFold(k, "Authorization") {
			req.Header[k] = v
		}
	}
	client := h.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("fetch token for %s from %s: %w", h.Host, redactURL(u), err)
	}
	if resp.StatusCode != http.StatusOK {
		se := newStatusError(resp)
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			if user != "" {
				return "", time.Time{}, fmt.Errorf("fetch token for %s: credentials for user %q rejected: %w", h.Host, user, se)
			}
			if secret != "" {
				return "", time.Time{}, fmt.Errorf("fetch token for %s: refresh token rejected: %w", h.Host, se)
			}
			return "", time.Time{}, fmt.Errorf("fetch token for %s: anonymous access refused, credentials needed: %w", h.Host, se)
		}
		return "", time.Time{}, fmt.Errorf("fetch token for %s: %w", h.Host, se)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return "", time.Time{}, fmt.Errorf("fetch token for %s from %s: decode response: %v: %w", h.Host, redactURL(u), err, errdefs.ErrInvalidArgument)
	}
	tok := tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	if tok == "" {
		return "", time.Time{}, fmt.Errorf("fetch token for %s from %s: response holds no token: %w", h.Host, redactURL(u), errdefs.ErrInvalidArgument)
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	if life <= 0 {
		life = 60 * time.Second // the token protocol's default
	}
	// Renew a little early so a token does not expire in flight.
	return tok, time.Now().Add(life * 9 / 10), nil
}

// unauthorized explains a 401 that authenticating did not cure.
func (a *auth) unauthorized(h RegistryHost, se *StatusError) error {
	if u := a.user(h.Host); u != "" {
		return fmt.Errorf("authentication as %q failed at %s: %w", u, h.Host, se)
	}
	return fmt.Errorf("authentication required at %s and no credentials were given: %w", h.Host, se)
}

// challenge is one parsed WWW-Authenticate challenge.
type challenge struct {
	scheme string // lower case
	params map[string]string
}

// parseChallenges parses WWW-Authenticate values (RFC 7235): schemes,
// each followed by comma-separated name=value parameters (values are
// tokens or quoted strings), several challenges possibly in one value.
func parseChallenges(values []string) []challenge {
	var out []challenge
	for _, v := range values {
		p := &challengeParser{s: v}
		for {
			p.skip(" \t,")
			scheme := p.token()
			if scheme == "" {
				break
			}
			ch := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
			for {
				save := p.i
				p.skip(" \t,")
				name := p.token()
				p.skip(" \t")
				if name == "" || !p.consume('=') {
					// Not a parameter: the next challenge starts here.
					p.i = save
					break
				}
				p.skip(" \t")
				ch.params[strings.ToLower(name)] = p.value()
			}
			out = append(out, ch)
		}
	}
	return out
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) skip(chars string) {
	for p.i < len(p.s) && strings.IndexByte(chars, p.s[p.i]) >= 0 {
		p.i++
	}
}

func isTokenChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	return !strings.ContainsRune(`()<>@,;:\"/[]?={}`, rune(c))
}

func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *challengeParser) consume(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *challengeParser) value() string {
	if !p.consume('"') {
		return p.token()
	}
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '\\':
			if p.i < len(p.s) {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		case '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// repoScope is the token scope for actions on repository path.
func repoScope(path string, actions ...string) string {
	return "repository:" + path + ":" + strings.Join(actions, ",")
}
