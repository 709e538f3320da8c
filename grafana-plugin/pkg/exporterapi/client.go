package exporterapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxBody bounds how much of a response the client reads.
const maxBody = 32 << 20

// maxEventLine bounds one server-sent event line.
const maxEventLine = 1 << 20

// Auth holds the credentials sent with every request: basic auth when User
// is set, else a bearer token when Token is set.
type Auth struct {
	User, Password string
	Token          string
}

// Client talks to one exporter. Its zero value is not usable; use New.
type Client struct {
	base   *url.URL
	auth   Auth
	http   *http.Client // bounded requests
	stream *http.Client // long-lived /api/v1/stream; bounded by its context
}

// New returns a client for the exporter at baseURL. httpClient serves the
// request/response endpoints; streamClient, which should have no overall
// timeout, serves /api/v1/stream.
func New(baseURL string, auth Auth, httpClient, streamClient *http.Client) (*Client, error) {
	u, err := ParseURL(baseURL)
	if err != nil {
		return nil, err
	}
	return &Client{base: u, auth: auth, http: httpClient, stream: streamClient}, nil
}

// ParseURL checks an exporter base URL: absolute http(s) with a host, no query.
func ParseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("exporter URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("exporter URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("exporter URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("exporter URL %q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("exporter URL %q must not have a query or fragment", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// URL returns the exporter's base URL.
func (c *Client) URL() string { return c.base.String() }

// Close releases idle connections.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
	c.stream.CloseIdleConnections()
}

// APIError is an answer from the server that is not a successful API response.
type APIError struct {
	Path       string
	StatusCode int
	// Message is the exporter's "error" field, or a short excerpt of the body.
	Message string
	// NotAPI is set when the answer is not the exporter's JSON envelope
	// (another server, a proxy page, the wrong port).
	NotAPI bool
}

func (e *APIError) Error() string {
	if e.NotAPI {
		return fmt.Sprintf("GET %s: HTTP %d: not a FaceID exporter API response: %s", e.Path, e.StatusCode, e.Message)
	}
	return fmt.Sprintf("GET %s: HTTP %d: %s", e.Path, e.StatusCode, e.Message)
}

// envelope is the exporter's response wrapper.
type envelope struct {
	Status string          `json:"status"`
	Data   json.RawMessage `json:"data"`
	Error  string          `json:"error"`
}

func (c *Client) newRequest(ctx context.Context, path string, q url.Values) (*http.Request, error) {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build request for %s: %w", path, err)
	}
	switch {
	case c.auth.User != "":
		req.SetBasicAuth(c.auth.User, c.auth.Password)
	case c.auth.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.auth.Token)
	}
	req.Header.Set("User-Agent", "faceid-verification-datasource")
	return req, nil
}

// fetch calls an endpoint and returns the status and the body.
func (c *Client) fetch(ctx context.Context, path string, q url.Values) (int, []byte, error) {
	req, err := c.newRequest(ctx, path, q)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: read body: %w", path, err)
	}
	if len(body) > maxBody {
		return 0, nil, fmt.Errorf("GET %s: response larger than %d bytes", path, maxBody)
	}
	return resp.StatusCode, body, nil
}

// get calls an /api/v1 endpoint and decodes its data into dst.
func (c *Client) get(ctx context.Context, path string, q url.Values, dst any) error {
	status, body, err := c.fetch(ctx, path, q)
	if err != nil {
		return err
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || (env.Status != "success" && env.Status != "error") {
		return &APIError{Path: path, StatusCode: status, Message: excerpt(body), NotAPI: true}
	}
	if env.Status == "error" || status/100 != 2 {
		msg := env.Error
		if msg == "" {
			msg = http.StatusText(status)
		}
		return &APIError{Path: path, StatusCode: status, Message: msg}
	}
	if err := json.Unmarshal(env.Data, dst); err != nil {
		return fmt.Errorf("GET %s: decode data: %w", path, err)
	}
	return nil
}

func excerpt(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return "empty body"
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return strconv.Quote(s)
}

// Events returns up to limit recent events of kind, newest first; limit 0
// leaves the exporter's default.
func (c *Client) Events(ctx context.Context, kind string, limit int) (*Events, error) {
	if !ValidEventKind(kind) {
		return nil, fmt.Errorf("event kind %q is not one of %s", kind, strings.Join(EventKinds(), ", "))
	}
	q := url.Values{"kind": {kind}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out Events
	if err := c.get(ctx, "/api/v1/events", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Catalog returns the exporter's return-code catalog.
func (c *Client) Catalog(ctx context.Context) (*Catalog, error) {
	var out Catalog
	if err := c.get(ctx, "/api/v1/catalog", nil, &out); err != nil {
		return nil, err
	}
	if len(out.Families) == 0 {
		return nil, &APIError{Path: "/api/v1/catalog", StatusCode: http.StatusOK, Message: "catalog has no families", NotAPI: true}
	}
	return &out, nil
}

// Ledger returns the exporter's exact books of the Beijing days from..to
// (YYYY-MM-DD, inclusive). The document is accepted bare, as the exporter's
// ledger command writes it, or in the API's status/data envelope; errors
// are read from the envelope or, failing that, from a plain-text body.
func (c *Client) Ledger(ctx context.Context, from, to string) (*Ledger, error) {
	const path = "/api/v1/ledger"
	status, doc, err := c.document(ctx, path, url.Values{"from": {from}, "to": {to}, "format": {"json"}}, "rows")
	if err != nil {
		return nil, err
	}
	var out Ledger
	if err := json.Unmarshal(doc, &out); err != nil {
		return nil, fmt.Errorf("GET %s: decode ledger: %w", path, err)
	}
	if out.Rows == nil {
		return nil, &APIError{Path: path, StatusCode: status, Message: "ledger without rows: " + excerpt(doc), NotAPI: true}
	}
	return &out, nil
}

// Forecast returns the exporter's forecast of its ledger with days of daily
// forecast. Like the ledger, the document is bare (or in the status/data
// envelope); errors are read from the envelope or a plain-text body.
func (c *Client) Forecast(ctx context.Context, days int) (*Forecast, error) {
	const path = "/api/v1/forecast"
	status, doc, err := c.document(ctx, path, url.Values{"days": {strconv.Itoa(days)}, "format": {"json"}}, "total")
	if err != nil {
		return nil, err
	}
	var out Forecast
	if err := json.Unmarshal(doc, &out); err != nil {
		return nil, fmt.Errorf("GET %s: decode forecast: %w", path, err)
	}
	if out.Today == "" {
		return nil, &APIError{Path: path, StatusCode: status, Message: "forecast without today: " + excerpt(doc), NotAPI: true}
	}
	return &out, nil
}

// document fetches path and returns the document it answers with its HTTP
// status: the data of the API's status/data envelope, or a bare document,
// which must carry the field key. A failed request's error is read from the
// envelope or, failing that, from a plain-text body.
func (c *Client) document(ctx context.Context, path string, q url.Values, key string) (int, []byte, error) {
	status, body, err := c.fetch(ctx, path, q)
	if err != nil {
		return 0, nil, err
	}
	var head struct {
		Status *string         `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	isJSON := json.Unmarshal(body, &head) == nil
	if status/100 != 2 {
		msg := head.Error
		if !isJSON || msg == "" {
			msg = strings.TrimSpace(string(body))
			if len(msg) > 200 {
				msg = msg[:200] + "…"
			}
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		return status, nil, &APIError{Path: path, StatusCode: status, Message: msg}
	}
	if isJSON && head.Status != nil && *head.Status == "success" {
		return status, head.Data, nil
	}
	var fields map[string]json.RawMessage
	if !isJSON || head.Status != nil || json.Unmarshal(body, &fields) != nil || fields[key] == nil {
		return status, nil, &APIError{Path: path, StatusCode: status, Message: excerpt(body), NotAPI: true}
	}
	return status, body, nil
}

// Summary returns the counts per channel, outcome and billable since the exporter started.
func (c *Client) Summary(ctx context.Context) (*Summary, error) {
	var out Summary
	if err := c.get(ctx, "/api/v1/summary", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Ready asks /-/ready; it returns nil when the exporter is connected to NATS.
func (c *Client) Ready(ctx context.Context) error {
	req, err := c.newRequest(ctx, "/-/ready", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET /-/ready: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return &APIError{Path: "/-/ready", StatusCode: resp.StatusCode, Message: excerpt(body)}
	}
	return nil
}

// StreamHandlers receive what a stream delivers.
type StreamHandlers struct {
	// Open, if set, is called once the exporter has accepted the stream.
	Open func()
	// Event is called for every event; an error ends the stream.
	Event func(Event) error
	// Bad, if set, receives events that do not decode; they are skipped.
	Bad func(error)
}

// Stream follows /api/v1/stream?kind=kind and hands every event to h.Event
// until ctx is cancelled, the server ends the stream, or h.Event returns an
// error. It returns ctx.Err() after cancellation, io.EOF when the server
// closed the stream, and h.Event's error as is.
func (c *Client) Stream(ctx context.Context, kind string, h StreamHandlers) error {
	if !ValidStreamKind(kind) {
		return fmt.Errorf("stream kind %q is not one of %s", kind, strings.Join(StreamKinds(), ", "))
	}
	req, err := c.newRequest(ctx, "/api/v1/stream", url.Values{"kind": {kind}})
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.stream.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("GET /api/v1/stream: %w", err)
	}
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); resp.StatusCode != http.StatusOK || mt != "text/event-stream" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var env envelope
		if json.Unmarshal(body, &env) == nil && env.Status == "error" {
			return &APIError{Path: "/api/v1/stream", StatusCode: resp.StatusCode, Message: env.Error}
		}
		return &APIError{Path: "/api/v1/stream", StatusCode: resp.StatusCode, Message: "content type " + strconv.Quote(mt) + ": " + excerpt(body), NotAPI: true}
	}
	if h.Open != nil {
		h.Open()
	}
	err = ReadEvents(resp.Body, h.Event, h.Bad)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ReadEvents parses a text/event-stream body: every event's data lines are
// joined and decoded as an Event and passed to fn; data that does not decode
// is passed to bad (which may be nil) and skipped; comment lines (keepalives)
// are ignored. It returns io.EOF at the end of the body.
func ReadEvents(r io.Reader, fn func(Event) error, bad func(error)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventLine)
	var data bytes.Buffer
	dispatch := func() error {
		if data.Len() == 0 {
			return nil
		}
		defer data.Reset()
		var ev Event
		if err := json.Unmarshal(data.Bytes(), &ev); err != nil {
			if bad != nil {
				bad(fmt.Errorf("decode stream event %s: %w", excerpt(data.Bytes()), err))
			}
			return nil
		}
		return fn(ev)
	}
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if err := dispatch(); err != nil {
				return err
			}
		case line[0] == ':':
			// comment, e.g. keepalive
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(line[len("data:"):], []byte(" "))
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(v)
		default:
			// event:, id:, retry: and unknown fields carry nothing we use.
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stream: %w", err)
	}
	if err := dispatch(); err != nil {
		return err
	}
	return io.EOF
}
