// Package tencenttest runs an in-process stand-in for Tencent Cloud's
// GetWeChatBillDetails (faceid 2018-03-01) over HTTPS for tests. It checks
// every request's TC3-HMAC-SHA256 signature with its own implementation of
// the published algorithm (canonical request, string to sign, keys derived
// date → service → tc3_request), independent of the SDK the client uses.
package tencenttest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The API the server speaks.
const (
	Service = "faceid"
	Action  = "GetWeChatBillDetails"
	Version = "2018-03-01"
)

// Start serves f over HTTPS until the test ends; f.Secrets defaults to
// SecretID → SecretKey.
func Start(t testing.TB, f *Server) *httptest.Server {
	t.Helper()
	if f.Secrets == nil {
		f.Secrets = map[string]string{SecretID: SecretKey}
	}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	return srv
}

// The credentials Start accepts by default.
const (
	SecretID  = "AKIDtestreconcile0001"
	SecretKey = "test-secret-key-do-not-use"
)

// Server speaks GetWeChatBillDetails as documented: it verifies each
// request's TC3-HMAC-SHA256 signature with Verify, decodes the request
// strictly and answers pages by cursor, after the errors scripted for that
// date and cursor.
type Server struct {
	Secrets map[string]string
	// Pages[date] are the response bodies ({"Response": {...}}) of the
	// date's pages in order; page 1 answers cursor 0, page n+1 the NextCursor
	// of page n.
	Pages map[string][]string
	// Fail["date/cursor"] are answered, one per request, before the page:
	// a Tencent error code, or "HTTP503" for a bare 503, or "GARBLED" for a
	// 200 whose body is not JSON.
	Fail map[string][]string

	mu   sync.Mutex
	seen []Request
}

type Request struct {
	Header http.Header
	Host   string
	Body   []byte
	Date   string
	Cursor uint64
	Answer string // "page N", an error code
}

func (f *Server) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.seen...)
}

func writeError(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"Response": {"Error": {"Code": %q, "Message": %q}, "RequestId": "req-err"}}`, code, msg)
}

func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := Request{Header: r.Header.Clone(), Host: r.Host, Body: body}
	answer := func(a string) {
		s.Answer = a
		f.mu.Lock()
		f.seen = append(f.seen, s)
		f.mu.Unlock()
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		answer("UnsupportedProtocol")
		writeError(w, "UnsupportedProtocol", "POST / only")
		return
	}
	if code, err := Verify(r, body, f.Secrets, Service, time.Now()); err != nil {
		answer(code)
		writeError(w, code, err.Error())
		return
	}
	if r.Header.Get("X-TC-Action") != Action || r.Header.Get("X-TC-Version") != Version {
		answer("InvalidAction")
		writeError(w, "InvalidAction", "unknown action or version")
		return
	}
	var req struct {
		Date   *string
		Cursor *uint64
		RuleId *string
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Date == nil || req.Cursor == nil {
		answer("InvalidParameter")
		writeError(w, "InvalidParameter", fmt.Sprintf("request %s", body))
		return
	}
	if _, err := time.Parse("2006-01-02", *req.Date); err != nil {
		answer("InvalidParameterValue")
		writeError(w, "InvalidParameterValue", "Date")
		return
	}
	s.Date, s.Cursor = *req.Date, *req.Cursor
	key := fmt.Sprintf("%s/%d", s.Date, s.Cursor)
	f.mu.Lock()
	var fail string
	if q := f.Fail[key]; len(q) > 0 {
		fail, f.Fail[key] = q[0], q[1:]
	}
	f.mu.Unlock()
	switch fail {
	case "":
	case "HTTP503":
		answer(fail)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "<html>busy</html>")
		return
	case "GARBLED":
		answer(fail)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"Response": {"WeChatBillDetails": [{"Idcard": "1101**********1234", "Name": "*三"`)
		return
	default:
		answer(fail)
		writeError(w, fail, "scripted")
		return
	}
	cursor := uint64(0)
	for n, p := range f.Pages[s.Date] {
		if cursor == s.Cursor {
			answer(fmt.Sprintf("page %d", n+1))
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, p)
			return
		}
		var next struct{ Response struct{ NextCursor uint64 } }
		if err := json.Unmarshal([]byte(p), &next); err != nil {
			panic(err)
		}
		cursor = next.Response.NextCursor
	}
	if len(f.Pages[s.Date]) == 0 && s.Cursor == 0 {
		answer("empty")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"Response": {"HasNextPage": false, "NextCursor": 0, "RequestId": "req-empty", "WeChatBillDetails": []}}`)
		return
	}
	answer("InvalidParameterValue")
	writeError(w, "InvalidParameterValue", "Cursor")
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// CanonicalRequest builds the canonical request from the method, URI,
// query string, the signed headers (name, value; names sorted) and the payload.
func CanonicalRequest(method, uri, query string, headers [][2]string, payload []byte) (canonical, signed string) {
	var ch strings.Builder
	names := make([]string, 0, len(headers))
	for _, h := range headers {
		name := strings.ToLower(strings.TrimSpace(h[0]))
		ch.WriteString(name + ":" + strings.ToLower(strings.TrimSpace(h[1])) + "\n")
		names = append(names, name)
	}
	signed = strings.Join(names, ";")
	canonical = method + "\n" + uri + "\n" + query + "\n" + ch.String() + "\n" + signed + "\n" + sha256Hex(payload)
	return canonical, signed
}

// Sign returns the credential scope and the hex signature of a canonical request.
func Sign(secretKey, service string, timestamp int64, canonical string) (scope, signature string) {
	date := time.Unix(timestamp, 0).UTC().Format("2006-01-02")
	scope = date + "/" + service + "/tc3_request"
	stringToSign := "TC3-HMAC-SHA256\n" + strconv.FormatInt(timestamp, 10) + "\n" + scope + "\n" + sha256Hex([]byte(canonical))
	kDate := hmacSHA256([]byte("TC3"+secretKey), date)
	kService := hmacSHA256(kDate, service)
	kSigning := hmacSHA256(kService, "tc3_request")
	return scope, hex.EncodeToString(hmacSHA256(kSigning, stringToSign))
}

// Verify checks the Authorization header of a request as Tencent's API
// would: the algorithm, a known SecretId, the credential scope, the
// timestamp within five minutes of now, and the signature over the
// canonical request.
func Verify(r *http.Request, body []byte, secrets map[string]string, service string, now time.Time) (code string, err error) {
	const authFailure = "AuthFailure.SignatureFailure"
	alg, rest, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || alg != "TC3-HMAC-SHA256" {
		return authFailure, errors.New("authorization is not TC3-HMAC-SHA256")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ", ") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return authFailure, fmt.Errorf("authorization part %q", part)
		}
		fields[k] = v
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 4 || cred[3] != "tc3_request" {
		return authFailure, fmt.Errorf("credential %q", fields["Credential"])
	}
	key, ok := secrets[cred[0]]
	if !ok {
		return "AuthFailure.SecretIdNotFound", fmt.Errorf("secret id %q unknown", cred[0])
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
	if err != nil {
		return authFailure, errors.New("X-TC-Timestamp is not a number")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return "AuthFailure.SignatureExpire", fmt.Errorf("timestamp %d is %s from now", ts, d)
	}
	if cred[2] != service {
		return authFailure, fmt.Errorf("credential service %q, want %q", cred[2], service)
	}
	names := strings.Split(fields["SignedHeaders"], ";")
	if !slices.IsSorted(names) || !slices.Contains(names, "host") || !slices.Contains(names, "content-type") {
		return authFailure, fmt.Errorf("signed headers %q", fields["SignedHeaders"])
	}
	var headers [][2]string
	for _, n := range names {
		v := r.Header.Get(n)
		if n == "host" {
			v = r.Host
		}
		headers = append(headers, [2]string{n, v})
	}
	canonical, _ := CanonicalRequest(r.Method, r.URL.Path, r.URL.RawQuery, headers, body)
	scope, want := Sign(key, service, ts, canonical)
	if cred[1]+"/"+cred[2]+"/"+cred[3] != scope {
		return authFailure, fmt.Errorf("credential scope %q, want %q", fields["Credential"], scope)
	}
	got, err := hex.DecodeString(fields["Signature"])
	if err != nil || !hmac.Equal(got, must(hex.DecodeString(want))) {
		return authFailure, errors.New("signature does not match")
	}
	return "", nil
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// SavedPages returns the names of the bill pages saved in dir, sorted, and
// fails t for every page that holds one of personal (the masked Idcard and
// Name the decoder must drop before anything is saved).
func SavedPages(t testing.TB, dir string, personal []string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range personal {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("saved %s holds %q", e.Name(), p)
			}
		}
	}
	return names
}
