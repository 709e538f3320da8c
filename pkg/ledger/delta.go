package ledger

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// A checkpoint's delta carries, for each ledger day the commit changed, the
// rows that changed with their counts then (not the increments: a count is
// replaced, so applying a delta twice changes nothing). Encoding: a JSON
// object, YYYY-MM-DD → array of [channel, code, billable, rule_id, count].

// EncodeDaysDelta returns the stored form of the changed rows of days.
func EncodeDaysDelta(days map[Day][]Row) ([]byte, error) {
	out := make(map[string][]deltaRow, len(days))
	for d, rows := range days {
		drs := make([]deltaRow, len(rows))
		for i, r := range rows {
			drs[i] = deltaRow(r)
		}
		out[d.String()] = drs
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode ledger delta: %w", err)
	}
	return data, nil
}

// DecodeDaysDelta parses what EncodeDaysDelta wrote (nothing: no change).
func DecodeDaysDelta(data []byte) (map[Day][]Row, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var in map[string][]deltaRow
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("decode ledger delta: %w", err)
	}
	out := make(map[Day][]Row, len(in))
	for ds, drs := range in {
		d, err := ParseDay(ds)
		if err != nil {
			return nil, fmt.Errorf("decode ledger delta: %w", err)
		}
		rows := make([]Row, len(drs))
		for i, r := range drs {
			rows[i] = Row(r)
			rows[i].Day = ds
		}
		out[d] = rows
	}
	return out, nil
}

// MergeDay applies the day's changed rows of deltas, in commit order, to the
// day's stored value (a DayFile as JSON) and returns the DayFile they
// describe.
func MergeDay(day Day, full []byte, deltas ...map[Day][]Row) (*DayFile, error) {
	var f DayFile
	if err := json.Unmarshal(full, &f); err != nil {
		return nil, fmt.Errorf("decode ledger day %s: %w", day, err)
	}
	var changes [][]Row
	for _, d := range deltas {
		if r := d[day]; r != nil {
			changes = append(changes, r)
		}
	}
	if len(changes) == 0 {
		return &f, nil
	}
	b := Books{}
	key := func(r Row) Key {
		return Key{Day: day, Channel: r.Channel, Code: r.Code, Billable: r.Billable, RuleID: r.RuleID}
	}
	for _, r := range f.Rows {
		b.Add(key(r), r.Count)
	}
	for _, rows := range changes {
		for _, r := range rows {
			b[key(r)] = r.Count
		}
	}
	f.Rows = b.Rows(day, day)
	if f.Rows == nil {
		f.Rows = []Row{}
	}
	return &f, nil
}

// ChangedDays returns the days a delta's rows change, sorted.
func ChangedDays(deltas ...map[Day][]Row) []Day {
	set := map[Day]bool{}
	for _, d := range deltas {
		for day := range d {
			set[day] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// deltaRow is a Row without its day, encoded as an array.
type deltaRow Row

func (r deltaRow) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{r.Channel, r.Code, r.Billable, r.RuleID, r.Count})
}

func (r *deltaRow) UnmarshalJSON(b []byte) error {
	var a []json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	if len(a) != 5 {
		return fmt.Errorf("ledger delta row: %d fields, want 5", len(a))
	}
	for i, p := range []*string{&r.Channel, &r.Code, &r.Billable, &r.RuleID} {
		if err := json.Unmarshal(a[i], p); err != nil {
			return fmt.Errorf("ledger delta row field %d: %w", i, err)
		}
	}
	if err := json.Unmarshal(a[4], &r.Count); err != nil {
		return fmt.Errorf("ledger delta row count: %w", err)
	}
	return nil
}
