package tencenttest

import "testing"

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
			canonical, signed := CanonicalRequest("POST", "/", "", [][2]string{{"content-type", tc.contentType}, {"host", tc.host}}, []byte(tc.payload))
			if signed != "content-type;host" {
				t.Errorf("signed headers %q", signed)
			}
			_, sig := Sign(tc.secretKey, tc.service, tc.ts, canonical)
			if sig != tc.want {
				t.Errorf("signature %s, want %s", sig, tc.want)
			}
		})
	}
}
