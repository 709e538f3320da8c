package main

import (
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

func TestWebLimitFlags(t *testing.T) {
	tests := []struct {
		name             string
		args             []string
		streams, flights int
		err              string
	}{
		{"defaults", nil, 64, 40, ""},
		{"set", []string{"--web.max-stream-clients=5", "--web.max-requests=3"}, 5, 3, ""},
		{"zero is no limit", []string{"--web.max-stream-clients=0", "--web.max-requests=0"}, -1, -1, ""},
		{"negative streams", []string{"--web.max-stream-clients=-1"}, 0, 0, "--web.max-stream-clients -1 must not be negative"},
		{"negative requests", []string{"--web.max-requests=-2"}, 0, 0, "--web.max-requests -2 must not be negative"},
		{"not a number", []string{"--web.max-requests=many"}, 0, 0, `strconv.ParseFloat: parsing "many": invalid syntax`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := kingpin.New("exporter", "")
			l := addWebLimitFlags(app.Command("serve", "").Default())
			_, err := app.Parse(tc.args)
			var streams, flights int
			if err == nil {
				streams, flights, err = l.options()
			}
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("got %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if streams != tc.streams || flights != tc.flights {
				t.Errorf("got %d stream clients, %d requests; want %d, %d", streams, flights, tc.streams, tc.flights)
			}
		})
	}
}
