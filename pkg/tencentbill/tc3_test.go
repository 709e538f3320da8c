package tencentbill

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file holds the test server's own implementation of Tencent Cloud's
// published signature method v3 (TC3-HMAC-SHA256), written from the
// algorithm's description, not from the SDK: canonical request, string to
// sign, keys derived date → service → tc3_request, Authorization header.

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// tc3CanonicalRequest builds the canonical request from the method, URI,
// query string, the signed headers (name, value; names sorted) and the payload.
func tc3CanonicalRequest(method, uri, query string, headers [][2]string, payload []byte) (canonical, signed string) {
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

// tc3Sign returns the credential scope and the hex signature of a canonical request.
func tc3Sign(secretKey, service string, timestamp int64, canonical string) (scope, signature string) {
	date := time.Unix(timestamp, 0).UTC().Format("2006-01-02")
	scope = date + "/" + service + "/tc3_request"
	stringToSign := "TC3-HMAC-SHA256\n" + strconv.FormatInt(timestamp, 10) + "\n" + scope + "\n" + sha256Hex([]byte(canonical))
	kDate := hmacSHA256([]byte("TC3"+secretKey), date)
	kService := hmacSHA256(kDate, service)
	kSigning := hmacSHA256(kService, "tc3_request")
	return scope, hex.EncodeToString(hmacSHA256(kSigning, stringToSign))
}

// verifyTC3 checks the Authorization header of a request as Tencent's API
// would: the algorithm, a known SecretId, the credential scope, the
// timestamp within five minutes of now, and the signature over the
// canonical request.
func verifyTC3(r *http.Request, body []byte, secrets map[string]string, service string, now time.Time) (code string, err error) {
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
	canonical, _ := tc3CanonicalRequest(r.Method, r.URL.Path, r.URL.RawQuery, headers, body)
	scope, want := tc3Sign(key, service, ts, canonical)
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

// TestTC3KnownAnswers checks the test server's signer against the examples
// Tencent Cloud publishes with the algorithm, so that the server does not
// merely agree with the SDK.
func TestTC3KnownAnswers(t *testing.T) {
	tests := []struct {
		name, secretKey, service, contentType, host, payload string
		ts                                                   int64
		want                                                 string
	}{
		{"documentation_sample", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "cvm", "application/json; charset=utf-8", "cvm.tencentcloudapi.com",
			`{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`, 1551113065,
			"72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"},
		{"minimal_post", "MY_TC_SECRET_KEY", "cvm", "application/json", "cvm.tencentcloudapi.com", `{}`, 1000000000,
			"2c0b761dcdeacac29ac9d135f9f22b0fa52d4536d8b7727a8a515935c47eaea7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			canonical, signed := tc3CanonicalRequest("POST", "/", "", [][2]string{{"content-type", tc.contentType}, {"host", tc.host}}, []byte(tc.payload))
			if signed != "content-type;host" {
				t.Errorf("signed headers %q", signed)
			}
			_, sig := tc3Sign(tc.secretKey, tc.service, tc.ts, canonical)
			if sig != tc.want {
				t.Errorf("signature %s, want %s", sig, tc.want)
			}
		})
	}
}
