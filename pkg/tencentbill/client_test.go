package tencentbill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/faceid-observability/faceid-exporter/internal/tencenttest"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

const (
	testSecretID  = tencenttest.SecretID
	testSecretKey = tencenttest.SecretKey
)

// Two pages of 2024-03-02, with the masked personal fields Tencent returns.
var livePages = []string{
	`{"Response": {"HasNextPage": true, "NextCursor": 7, "RequestId": "req-p1", "WeChatBillDetails": [
  {"BizToken": "BT-1", "ChargeCount": 2, "RuleId": "1", "ChargeDetails": [
    {"ReqTime": "1709308800000", "Seq": "s1", "Idcard": "1101**********1234", "Name": "*三", "Sim": "40.10", "IsNeedCharge": true, "ChargeType": "核身", "ErrorCode": "2016", "ErrorMessage": "比对相似度未达到通过标准"},
    {"ReqTime": "1709308860000", "Seq": "s2", "Idcard": "1101**********1234", "Name": "*三", "Sim": "91.20", "IsNeedCharge": true, "ChargeType": "核身", "ErrorCode": "0", "ErrorMessage": "成功"}]},
  {"BizToken": "BT-2", "ChargeCount": 0, "RuleId": "2", "ChargeDetails": [
    {"ReqTime": "1709310000000", "Seq": "s3", "Idcard": "4403**********5678", "Name": "*四", "Sim": "0.00", "IsNeedCharge": false, "ChargeType": "核身", "ErrorCode": "1005", "ErrorMessage": "活体检测未通过"}]}]}}`,
	`{"Response": {"HasNextPage": false, "NextCursor": 0, "RequestId": "req-p2", "WeChatBillDetails": [
  {"BizToken": "BT-3", "ChargeCount": 1, "RuleId": "1", "ChargeDetails": [
    {"ReqTime": "1709395199999", "Seq": "s4", "Idcard": "3101**********0001", "Name": "*五", "Sim": "88.00", "IsNeedCharge": true, "ChargeType": "比对", "ErrorCode": "0", "ErrorMessage": "成功"}]}]}}`,
}

var personal = []string{"Idcard", "Name", "1101**********1234", "4403**********5678", "3101**********0001", "*三", "*四", "*五"}

func wantLivePages() []Page {
	return []Page{
		{HasNextPage: true, NextCursor: 7, RequestID: "req-p1", Bills: []Bill{
			{BizToken: "BT-1", ChargeCount: 2, RuleID: "1", Details: []ChargeDetail{
				{ReqTimeMs: 1709308800000, Seq: "s1", Sim: "40.10", IsNeedCharge: true, ChargeType: "核身", ErrorCode: "2016", ErrorMessage: "比对相似度未达到通过标准"},
				{ReqTimeMs: 1709308860000, Seq: "s2", Sim: "91.20", IsNeedCharge: true, ChargeType: "核身", ErrorCode: "0", ErrorMessage: "成功"},
			}},
			{BizToken: "BT-2", ChargeCount: 0, RuleID: "2", Details: []ChargeDetail{
				{ReqTimeMs: 1709310000000, Seq: "s3", Sim: "0.00", ChargeType: "核身", ErrorCode: "1005", ErrorMessage: "活体检测未通过"},
			}},
		}},
		{HasNextPage: false, NextCursor: 0, RequestID: "req-p2", Bills: []Bill{
			{BizToken: "BT-3", ChargeCount: 1, RuleID: "1", Details: []ChargeDetail{
				{ReqTimeMs: 1709395199999, Seq: "s4", Sim: "88.00", IsNeedCharge: true, ChargeType: "比对", ErrorCode: "0", ErrorMessage: "成功"},
			}},
		}},
	}
}

type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func startFake(t *testing.T, f *tencenttest.Server) *httptest.Server {
	t.Helper()
	return tencenttest.Start(t, f)
}

func testClient(t *testing.T, srv *httptest.Server, mod func(*Config)) (*Client, *sleeps) {
	t.Helper()
	sl := &sleeps{}
	cfg := Config{SecretID: testSecretID, SecretKey: testSecretKey, Region: "ap-guangzhou",
		Endpoint: srv.Listener.Addr().String(), Transport: srv.Client().Transport,
		Retry: Retry{Attempts: 4, Initial: 100 * time.Millisecond, Max: time.Second}, Sleep: sl.sleep}
	if mod != nil {
		mod(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, sl
}

func mustDay(t *testing.T, s string) ledger.Day {
	t.Helper()
	d, err := ledger.ParseDay(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestClientLive fetches a date of two pages through the SDK against the
// in-process server: the first page after a rate-limit error, the second
// after an internal error and a bare 503; every request is signed correctly,
// the pages are saved in the offline layout without the personal fields.
func TestClientLive(t *testing.T) {
	f := &tencenttest.Server{
		Pages: map[string][]string{"2024-03-02": livePages},
		Fail:  map[string][]string{"2024-03-02/0": {"RequestLimitExceeded"}, "2024-03-02/7": {"InternalError", "HTTP503"}},
	}
	srv := startFake(t, f)
	save := t.TempDir()
	c, sl := testClient(t, srv, func(c *Config) { c.SaveDir = save })
	day := mustDay(t, "2024-03-02")
	pages, ok, err := c.Day(context.Background(), day)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("live source says no bill data")
	}
	if !reflect.DeepEqual(pages, wantLivePages()) {
		t.Errorf("pages\n%+v\nwant\n%+v", pages, wantLivePages())
	}

	reqs := f.Requests()
	var got []string
	for _, r := range reqs {
		got = append(got, fmt.Sprintf("%s/%d:%s", r.Date, r.Cursor, r.Answer))
	}
	want := []string{"2024-03-02/0:RequestLimitExceeded", "2024-03-02/0:page 1", "2024-03-02/7:InternalError", "2024-03-02/7:HTTP503", "2024-03-02/7:page 2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
	for i, r := range reqs {
		if r.Header.Get("X-TC-Region") != "ap-guangzhou" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %d: region %q, content type %q", i, r.Header.Get("X-TC-Region"), r.Header.Get("Content-Type"))
		}
	}
	// Backoff: 100ms after the first failure of a page, 200ms after its second (±20%).
	wantSleeps := []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	if len(sl.d) != len(wantSleeps) {
		t.Fatalf("slept %v, want about %v", sl.d, wantSleeps)
	}
	for i, d := range sl.d {
		if lo, hi := wantSleeps[i]*8/10, wantSleeps[i]*12/10; d < lo || d > hi {
			t.Errorf("sleep %d: %s, want %s..%s", i, d, lo, hi)
		}
	}

	// The saved layout: one file per page, no personal data, read back the same.
	names := tencenttest.SavedPages(t, save, personal)
	if !reflect.DeepEqual(names, []string{"2024-03-02.1.json", "2024-03-02.2.json"}) {
		t.Errorf("saved %q", names)
	}
	d, err := OpenDir(save)
	if err != nil {
		t.Fatal(err)
	}
	back, ok, err := d.Day(context.Background(), day)
	if err != nil || !ok {
		t.Fatalf("read back: ok %v, %v", ok, err)
	}
	if !reflect.DeepEqual(back, pages) {
		t.Errorf("read back\n%+v\nwant\n%+v", back, pages)
	}

	// A later fetch of fewer pages leaves no stale page behind.
	f.Pages["2024-03-02"] = []string{`{"Response": {"HasNextPage": false, "NextCursor": 0, "RequestId": "req-x", "WeChatBillDetails": []}}`}
	if _, _, err := c.Day(context.Background(), day); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(save, "2024-03-02.2.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale page 2 after a one-page fetch: %v", err)
	}
}

// TestVerifierRefusesTampering replays a request the SDK signed, changed in
// one part, to the verifier: each change fails it.
func TestVerifierRefusesTampering(t *testing.T) {
	f := &tencenttest.Server{Pages: map[string][]string{"2024-03-02": livePages[1:]}}
	srv := startFake(t, f)
	c, _ := testClient(t, srv, nil)
	if _, _, err := c.Day(context.Background(), mustDay(t, "2024-03-02")); err != nil {
		t.Fatal(err)
	}
	orig := f.Requests()[0]
	replay := func(mod func(h http.Header, body *[]byte, host *string)) error {
		h, body, host := orig.Header.Clone(), append([]byte(nil), orig.Body...), orig.Host
		if mod != nil {
			mod(h, &body, &host)
		}
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header, r.Host = h, host
		_, err := tencenttest.Verify(r, body, map[string]string{testSecretID: testSecretKey}, Service, time.Now())
		return err
	}
	if err := replay(nil); err != nil {
		t.Fatalf("the untouched request fails: %v", err)
	}
	tests := []struct {
		name string
		mod  func(h http.Header, body *[]byte, host *string)
	}{
		{"body", func(_ http.Header, b *[]byte, _ *string) {
			*b = bytes.Replace(*b, []byte("2024-03-02"), []byte("2024-03-03"), 1)
		}},
		{"host", func(_ http.Header, _ *[]byte, h *string) { *h = "faceid.example.invalid" }},
		{"content_type", func(h http.Header, _ *[]byte, _ *string) { h.Set("Content-Type", "text/plain") }},
		{"timestamp", func(h http.Header, _ *[]byte, _ *string) {
			ts := h.Get("X-TC-Timestamp")
			h.Set("X-TC-Timestamp", ts[:len(ts)-1]+string('0'+(ts[len(ts)-1]-'0'+1)%10))
		}},
		{"signature", func(h http.Header, _ *[]byte, _ *string) {
			a := h.Get("Authorization")
			h.Set("Authorization", a[:len(a)-4]+"0000")
		}},
		{"service", func(h http.Header, _ *[]byte, _ *string) {
			h.Set("Authorization", strings.Replace(h.Get("Authorization"), "/faceid/", "/cvm/", 1))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := replay(tc.mod); err == nil {
				t.Error("the changed request verifies")
			}
		})
	}
}

// TestClientWrongCredentials: a wrong secret key or an unknown secret id is
// refused by the server and not retried.
func TestClientWrongCredentials(t *testing.T) {
	tests := []struct{ name, id, key, code string }{
		{"wrong_secret_key", testSecretID, "not-the-key", "AuthFailure.SignatureFailure"},
		{"unknown_secret_id", "AKIDnobody", testSecretKey, "AuthFailure.SecretIdNotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &tencenttest.Server{Pages: map[string][]string{"2024-03-02": livePages}}
			srv := startFake(t, f)
			c, sl := testClient(t, srv, func(c *Config) { c.SecretID, c.SecretKey = tc.id, tc.key })
			_, _, err := c.Day(context.Background(), mustDay(t, "2024-03-02"))
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != tc.code {
				t.Fatalf("error %v, want %s", err, tc.code)
			}
			if n := len(f.Requests()); n != 1 || len(sl.d) != 0 {
				t.Errorf("%d requests, %d sleeps: an auth failure is not retried", n, len(sl.d))
			}
			if strings.Contains(err.Error(), tc.key) {
				t.Error("the error shows the secret key")
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name      string
		fail      []string
		attempts  int
		wantReqs  int
		wantErr   string
		retryable bool
	}{
		{"rate_limit_exhausted", []string{"RequestLimitExceeded", "RequestLimitExceeded", "RequestLimitExceeded"}, 3, 3,
			"GetWeChatBillDetails 2024-03-02 page 1 (cursor 0): tencent cloud error RequestLimitExceeded: scripted (request id req-err)", true},
		{"not_retried", []string{"InvalidParameterValue"}, 3, 1,
			"GetWeChatBillDetails 2024-03-02 page 1 (cursor 0): tencent cloud error InvalidParameterValue: scripted (request id req-err)", false},
		{"garbled_body", []string{"GARBLED"}, 3, 1,
			"GetWeChatBillDetails 2024-03-02 page 1 (cursor 0): the response is not a JSON body", false},
		{"http_503_exhausted", []string{"HTTP503", "HTTP503"}, 2, 2,
			"GetWeChatBillDetails 2024-03-02 page 1 (cursor 0): tencent cloud error HTTPStatus: HTTP 503 Service Unavailable", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &tencenttest.Server{Pages: map[string][]string{"2024-03-02": livePages}, Fail: map[string][]string{"2024-03-02/0": tc.fail}}
			srv := startFake(t, f)
			c, _ := testClient(t, srv, func(c *Config) { c.Retry.Attempts = tc.attempts })
			_, _, err := c.Day(context.Background(), mustDay(t, "2024-03-02"))
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("error\n%v\nwant\n%s", err, tc.wantErr)
			}
			if Retryable(err) != tc.retryable {
				t.Errorf("Retryable %v, want %v", !tc.retryable, tc.retryable)
			}
			if n := len(f.Requests()); n != tc.wantReqs {
				t.Errorf("%d requests, want %d", n, tc.wantReqs)
			}
			for _, p := range personal[2:] {
				if strings.Contains(err.Error(), p) {
					t.Errorf("the error shows %q", p)
				}
			}
		})
	}
}

// TestClientTransport: no server is retried; an untrusted certificate is not.
func TestClientTransport(t *testing.T) {
	t.Run("connection_refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		sl := &sleeps{}
		c, err := NewClient(Config{SecretID: testSecretID, SecretKey: testSecretKey, Endpoint: addr,
			Retry: Retry{Attempts: 3, Initial: time.Millisecond}, Sleep: sl.sleep})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Day(context.Background(), mustDay(t, "2024-03-02"))
		var te *TransportError
		if !errors.As(err, &te) || !Retryable(err) {
			t.Fatalf("error %v, want a retryable *TransportError", err)
		}
		if len(sl.d) != 2 {
			t.Errorf("slept %d times, want 2 (3 attempts)", len(sl.d))
		}
	})
	t.Run("untrusted_certificate", func(t *testing.T) {
		f := &tencenttest.Server{Pages: map[string][]string{"2024-03-02": livePages}}
		srv := startFake(t, f)
		c, sl := testClient(t, srv, func(c *Config) { c.Transport = nil })
		_, _, err := c.Day(context.Background(), mustDay(t, "2024-03-02"))
		if err == nil || Retryable(err) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("error %v, want a certificate error, not retried", err)
		}
		if len(sl.d) != 0 {
			t.Errorf("slept %d times", len(sl.d))
		}
	})
}

// TestClientRateLimit: requests wait for the limiter.
func TestClientRateLimit(t *testing.T) {
	var pages []string
	for i := 1; i <= 4; i++ {
		pages = append(pages, fmt.Sprintf(`{"Response": {"HasNextPage": %v, "NextCursor": %d, "RequestId": "r%d", "WeChatBillDetails": []}}`, i < 4, i, i))
	}
	f := &tencenttest.Server{Pages: map[string][]string{"2024-03-02": pages}}
	srv := startFake(t, f)
	c, _ := testClient(t, srv, func(c *Config) { c.Limiter = rate.NewLimiter(rate.Every(60*time.Millisecond), 1) })
	start := time.Now()
	got, _, err := c.Day(context.Background(), mustDay(t, "2024-03-02"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d pages", len(got))
	}
	if el := time.Since(start); el < 180*time.Millisecond {
		t.Errorf("4 requests at one per 60ms took %s", el)
	}
	def, err := NewClient(Config{SecretID: "a", SecretKey: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if def.limiter.Limit() != RateLimit || def.limiter.Burst() != 1 {
		t.Errorf("default limiter %v/s burst %d, want %d/s burst 1", def.limiter.Limit(), def.limiter.Burst(), RateLimit)
	}
}
