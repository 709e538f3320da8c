package tencentbill

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	"golang.org/x/time/rate"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// Retry is the backoff between attempts of one request.
type Retry struct {
	Attempts int           // attempts in all, the first included (default 6)
	Initial  time.Duration // wait after the first failure (default 500ms), doubling
	Max      time.Duration // longest wait (default 10s)
}

// Config configures a live Client.
type Config struct {
	SecretID, SecretKey string
	Region              string // may be empty: the action needs none
	Endpoint            string // host[:port]; default DefaultEndpoint
	// Transport carries the HTTPS requests; nil: a clone of
	// http.DefaultTransport (tests pass their TLS server's).
	Transport http.RoundTripper
	Timeout   time.Duration // per request, default 30s
	// Limiter paces the requests; nil: RateLimit per second, burst 1.
	Limiter *rate.Limiter
	Retry   Retry
	// SaveDir, when set, keeps every fetched date in the offline layout.
	SaveDir string
	Logger  *slog.Logger
	// Sleep waits between attempts; nil: a timer that ends early with ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client calls GetWeChatBillDetails through the SDK's common client, which
// signs with TC3-HMAC-SHA256. It is safe for concurrent use.
type Client struct {
	sdk     *common.Client
	limiter *rate.Limiter
	retry   Retry
	saveDir string
	log     *slog.Logger
	sleep   func(context.Context, time.Duration) error
}

// maxPages bounds the pages of one date, against a cursor that never ends.
const maxPages = 100000

// NewClient returns a live client.
func NewClient(cfg Config) (*Client, error) {
	if cfg.SecretID == "" || cfg.SecretKey == "" {
		return nil, errors.New("tencent cloud: the secret id and the secret key are both needed")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	if strings.Contains(cfg.Endpoint, "/") {
		return nil, fmt.Errorf("tencent cloud endpoint %q: want host or host:port, without scheme or path", cfg.Endpoint)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Retry.Attempts <= 0 {
		cfg.Retry.Attempts = 6
	}
	if cfg.Retry.Initial <= 0 {
		cfg.Retry.Initial = 500 * time.Millisecond
	}
	if cfg.Retry.Max <= 0 {
		cfg.Retry.Max = 10 * time.Second
	}
	if cfg.Limiter == nil {
		cfg.Limiter = rate.NewLimiter(RateLimit, 1)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	prof := profile.NewClientProfile()
	prof.HttpProfile.Endpoint = cfg.Endpoint
	prof.HttpProfile.Scheme = "HTTPS"
	prof.HttpProfile.ReqMethod = "POST"
	prof.HttpProfile.ReqTimeout = int((cfg.Timeout + time.Second - 1) / time.Second)
	prof.SignMethod = "TC3-HMAC-SHA256"
	prof.DisableRegionBreaker = true
	// Retries are ours (paced by the limiter, ending with ctx), not the SDK's.
	prof.NetworkFailureMaxRetries = 0
	prof.RateLimitExceededMaxRetries = 0
	sdk := common.NewCommonClient(common.NewCredential(cfg.SecretID, cfg.SecretKey), cfg.Region, prof)
	sdk.WithHttpTransport(statusTransport{next: transport})
	return &Client{sdk: sdk, limiter: cfg.Limiter, retry: cfg.Retry, saveDir: cfg.SaveDir, log: cfg.Logger, sleep: cfg.Sleep}, nil
}

// Day implements Source: it fetches every page of the requested date and,
// with a save dir, saves them.
func (c *Client) Day(ctx context.Context, day ledger.Day) ([]Page, bool, error) {
	var pages []Page
	req := Request{Date: day.String()}
	seen := map[uint64]bool{}
	for n := 1; ; n++ {
		if n > maxPages {
			return nil, false, fmt.Errorf("%s %s: more than %d pages", Action, req.Date, maxPages)
		}
		seen[req.Cursor] = true
		p, err := c.page(ctx, req)
		if err != nil {
			return nil, false, fmt.Errorf("%s %s page %d (cursor %d): %w", Action, req.Date, n, req.Cursor, err)
		}
		pages = append(pages, p)
		if !p.HasNextPage {
			break
		}
		if seen[p.NextCursor] {
			return nil, false, fmt.Errorf("%s %s page %d: NextCursor %d was already requested", Action, req.Date, n, p.NextCursor)
		}
		req.Cursor = p.NextCursor
	}
	if c.saveDir != "" {
		if err := SaveDay(c.saveDir, day, pages); err != nil {
			return nil, false, err
		}
	}
	return pages, true, nil
}

// page fetches one page, retrying rate-limit and transient errors.
func (c *Client) page(ctx context.Context, req Request) (Page, error) {
	for attempt := 1; ; attempt++ {
		if err := c.limiter.Wait(ctx); err != nil {
			return Page{}, err
		}
		p, err := c.call(ctx, req)
		if err == nil {
			return p, nil
		}
		if !Retryable(err) || attempt >= c.retry.Attempts {
			return Page{}, err
		}
		wait := c.backoff(attempt)
		c.log.Warn("retrying tencent cloud request", "action", Action, "date", req.Date, "cursor", req.Cursor,
			"attempt", attempt, "wait", wait, "err", err)
		if err := c.sleep(ctx, wait); err != nil {
			return Page{}, err
		}
	}
}

// backoff returns the wait after failed attempt n (from 1): Initial doubling
// up to Max, with ±20% jitter.
func (c *Client) backoff(n int) time.Duration {
	d := c.retry.Initial
	for i := 1; i < n && d < c.retry.Max; i++ {
		d *= 2
	}
	d = min(d, c.retry.Max)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

type statusKey struct{}

// statusTransport records each response's HTTP status in the request's
// context, so that an error the SDK reports as unparseable JSON can be told
// to be a 5xx.
type statusTransport struct{ next http.RoundTripper }

func (t statusTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if p, ok := r.Context().Value(statusKey{}).(*int); ok && resp != nil {
		*p = resp.StatusCode
	}
	return resp, err
}

// rawResponse keeps the body the SDK read, for the strict decoder.
type rawResponse struct{ body []byte }

func (r *rawResponse) ParseErrorFromHTTPResponse(body []byte) error {
	r.body = append(r.body[:0], body...)
	return nil
}

func (r *rawResponse) UnmarshalJSON(b []byte) error {
	r.body = append(r.body[:0], b...)
	return nil
}

// TransportError is a request that got no HTTP response.
type TransportError struct{ Err error }

func (e *TransportError) Error() string { return "tencent cloud request failed: " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

func (c *Client) call(ctx context.Context, req Request) (Page, error) {
	r := tchttp.NewCommonRequest(Service, Version, Action)
	if err := r.SetActionParameters(req.params()); err != nil {
		return Page{}, fmt.Errorf("request parameters: %w", err)
	}
	status := 0
	r.SetContext(context.WithValue(ctx, statusKey{}, &status))
	resp := &rawResponse{}
	if err := c.sdk.Send(r, resp); err != nil {
		if ctx.Err() != nil {
			return Page{}, ctx.Err()
		}
		return Page{}, sdkError(err, status)
	}
	return Decode(fmt.Sprintf("%s %s cursor %d response", Action, req.Date, req.Cursor), resp.body)
}

// sdkError turns an SDK error into an *APIError or *TransportError. The SDK's
// own messages can quote the response body, which may hold personal data:
// they are dropped.
func sdkError(err error, status int) error {
	var se *tcerr.TencentCloudSDKError
	if !errors.As(err, &se) {
		return err
	}
	if !strings.HasPrefix(se.Code, "ClientError.") {
		return &APIError{Code: se.Code, Message: se.Message, RequestID: se.RequestId, HTTPStatus: status}
	}
	switch {
	case se.Code == "ClientError.NetworkError":
		cause := errors.Unwrap(se)
		if cause == nil {
			cause = errors.New("no response")
		}
		return &TransportError{Err: cause}
	case status != 0 && status != http.StatusOK:
		return &APIError{Code: "HTTPStatus", Message: fmt.Sprintf("HTTP %d %s", status, http.StatusText(status)), HTTPStatus: status}
	case se.Code == "ClientError.ParseJsonError":
		return errors.New("the response is not a JSON body")
	}
	return fmt.Errorf("tencent cloud sdk error %s", se.Code)
}

// Retryable reports whether a request that failed with err may succeed when
// sent again: Tencent's rate-limit and internal errors, 429 and 5xx
// responses, and requests that got no response (unless the server's
// certificate was refused).
func Retryable(err error) bool {
	var te *TransportError
	if errors.As(err, &te) {
		// A certificate the client does not trust stays untrusted.
		var cv *tls.CertificateVerificationError
		var ua x509.UnknownAuthorityError
		var he x509.HostnameError
		var ci x509.CertificateInvalidError
		return !errors.As(err, &cv) && !errors.As(err, &ua) && !errors.As(err, &he) && !errors.As(err, &ci)
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch {
	case ae.Code == "RequestLimitExceeded" || strings.HasPrefix(ae.Code, "RequestLimitExceeded."),
		ae.Code == "InternalError" || strings.HasPrefix(ae.Code, "InternalError."),
		ae.Code == "ServiceUnavailable":
		return true
	}
	return ae.HTTPStatus == http.StatusTooManyRequests || ae.HTTPStatus >= 500
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ReadSecretFile reads a credential from a file, without its trailing
// newline. Errors never show the file's content.
func ReadSecretFile(path, what string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read tencent cloud %s file: %w", what, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("tencent cloud %s file %s is empty", what, path)
	}
	if strings.ContainsAny(s, "\r\n \t") {
		return "", fmt.Errorf("tencent cloud %s file %s holds more than one line or spaces", what, path)
	}
	return s, nil
}
