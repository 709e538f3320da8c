package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/config"
)

func addClassify(app *kingpin.Application, c *cli) (*kingpin.CmdClause, func(context.Context) error) {
	cmd := app.Command("classify", "Classify JSON Lines verification results from files or stdin: one JSON object per input line on stdout, a summary on stderr.")
	files := cmd.Arg("file", "JSON Lines files to read in order; none, or -, reads stdin.").Strings()
	window := cmd.Flag("dedupe.window", "How long an event id is remembered to recognise redeliveries, by event time; 0 turns duplicate detection off.").Default("24h").Duration()
	capacity := cmd.Flag("dedupe.capacity", "How many event ids are remembered at most; the oldest are forgotten first.").Default("1000000").Int()
	future := cmd.Flag("events.future-tolerance", "An event whose ts is later than the time it is read by more than this is rejected as future_ts, as serve does on core NATS; 0 turns the rule off.").Default(config.DefaultFutureTolerance.String()).Duration()
	return cmd, func(ctx context.Context) error {
		cat, err := c.catalog()
		if err != nil {
			return err
		}
		if *future < 0 {
			return fmt.Errorf("--events.future-tolerance %s is negative", *future)
		}
		rules := books.NewRules(cat, books.RulesOptions{DedupeWindow: *window, DedupeCapacity: *capacity, FutureTolerance: *future})
		cl := stager{classify.New(cat, rules.ClassifyOptions()), rules}
		out := bufio.NewWriterSize(c.stdout, 64<<10)
		sum := newSummary()
		line := 0
		inputs := *files
		if len(inputs) == 0 {
			inputs = []string{"-"}
		}
		for _, name := range inputs {
			if err := ctx.Err(); err != nil {
				break
			}
			r, closeFn, err := openInput(name, c.stdin)
			if err != nil {
				return err
			}
			err = classifyStream(ctx, r, cl, out, sum, &line, c.now)
			closeFn()
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
		}
		if err := out.Flush(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		fmt.Fprintln(c.stderr, sum)
		return nil
	}
}

func openInput(name string, stdin io.Reader) (io.Reader, func(), error) {
	if name == "-" {
		return stdin, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("open input: %w", err)
	}
	return f, func() { f.Close() }, nil
}

// classifyStream classifies every line of r, numbering lines on from *line.
// A line longer than the message limit is rejected as oversize without being
// held in memory whole.
func classifyStream(ctx context.Context, r io.Reader, cl stager, out *bufio.Writer, sum *summary, line *int, now func() time.Time) error {
	br := bufio.NewReaderSize(r, classify.MaxMessageBytes+2)
	var res classify.Result
	buf := make([]byte, 0, 2048)
	for {
		if *line%4096 == 0 && ctx.Err() != nil {
			return nil
		}
		data, err := br.ReadSlice('\n')
		if len(data) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		*line++
		oversize := 0
		for errors.Is(err, bufio.ErrBufferFull) {
			oversize += len(data)
			data, err = br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		var cerr error
		if oversize > 0 {
			cerr = &classify.RejectError{Reason: classify.ReasonOversize, Detail: fmt.Sprintf("line is over %d bytes", oversize)}
		} else {
			data = trimEOL(data)
			cerr = cl.Classify(data, nil, now(), &res)
			if cerr == nil {
				cl.rules.Apply(&res)
			}
		}
		buf = buf[:0]
		if cerr != nil {
			var rej *classify.RejectError
			reason := "invalid_json"
			if errors.As(cerr, &rej) {
				reason = rej.Reason.String()
			}
			sum.rejected[reason]++
			buf = fmt.Appendf(buf, `{"line":%d,"error":`, *line)
			buf = classify.AppendString(buf, cerr.Error())
			buf = append(buf, "}\n"...)
		} else {
			sum.add(&res)
			buf = res.AppendJSON(buf, *line)
			buf = append(buf, '\n')
		}
		if _, werr := out.Write(buf); werr != nil {
			return fmt.Errorf("write output: %w", werr)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// summary counts what classify saw, for stderr.
type summary struct {
	lines, classified, duplicates int
	outcome                       map[string]int
	billable                      map[string]int
	rejected                      map[string]int
}

func newSummary() *summary {
	return &summary{outcome: map[string]int{}, billable: map[string]int{}, rejected: map[string]int{}}
}

func (s *summary) add(r *classify.Result) {
	s.classified++
	if r.Duplicate {
		s.duplicates++
		return
	}
	s.outcome[r.Outcome.String()]++
	s.billable[r.Billable.String()]++
}

func (s *summary) String() string {
	rej := 0
	for _, n := range s.rejected {
		rej += n
	}
	return fmt.Sprintf("classified %d lines, rejected %d%s; duplicates %d; outcome: success %d, failure %d; billable: true %d, false %d, unknown %d (duplicates excluded)",
		s.classified, rej, breakdown(s.rejected), s.duplicates, s.outcome["success"], s.outcome["failure"],
		s.billable["true"], s.billable["false"], s.billable["unknown"])
}

func breakdown(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// stager is the classifier followed by the stateful rules, as a partition
// applies them.
type stager struct {
	*classify.Classifier
	rules *books.Rules
}
