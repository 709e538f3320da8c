// Package checkpoint stores partitions' checkpoints in a JetStream KV bucket.
// A partition's record names the stream position and the data keys holding
// its state; it is written last, with a compare-and-set on its revision, so a
// commit is one atomic write and a stale owner can never overwrite a newer
// checkpoint (the record is the fence). Data keys carry the owner's epoch and
// alternate between two slots, so that a commit in progress never touches
// what the committed record references.
package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go/jetstream"
)

// Record formats: Version, a snapshot of full values only (what exporters
// before incremental checkpoints wrote and read); VersionDeltas, the same with
// a chain of deltas after the snapshot (Record.Deltas). A record is written
// as Version when it has no deltas, so that an older exporter still reads it,
// and refuses one with deltas rather than restore the snapshot alone.
const (
	Version       = 1
	VersionDeltas = 2
)

// ChunkBytes bounds one KV value: the server's default max_payload is 1 MiB.
const ChunkBytes = 512 << 10

// Errors.
var (
	// ErrFenced: another owner committed since this one's last commit (or
	// created the record first); this owner must stop.
	ErrFenced = errors.New("checkpoint fenced: another owner committed")
	// ErrNotFound: the partition has no checkpoint yet.
	ErrNotFound = errors.New("no checkpoint")
	// ErrChanged: a value no longer holds what the record read before it
	// names (gone, or other bytes): a commit landed between the two reads
	// and reused its slot, or the value is damaged.
	ErrChanged = errors.New("the value no longer matches its record")
)

// ReadAttempts is how many times View reads the records and their values
// before it gives up on reads that keep meeting ErrChanged.
const ReadAttempts = 5

// Record is one partition's committed checkpoint.
type Record struct {
	Version       int       `json:"v"`
	Stream        string    `json:"stream"`
	StreamCreated time.Time `json:"stream_created"`
	Group         string    `json:"group"`
	Partition     int       `json:"partition"`
	Partitions    int       `json:"partitions"`
	Filter        []string  `json:"filter"`
	// Owner and Epoch identify the owner; Epoch grows with every change of
	// owner, Commit with every commit within an epoch.
	Owner    string `json:"owner"`
	Epoch    uint64 `json:"epoch"`
	Commit   uint64 `json:"commit"`
	Released bool   `json:"released,omitempty"`
	// Seq is the last stream sequence the state includes; LostUpTo the
	// sequence up to which removed messages were counted as lost.
	Seq         uint64         `json:"seq"`
	LostUpTo    uint64         `json:"lost_up_to"`
	CommittedAt time.Time      `json:"committed_at"`
	Counters    Ref            `json:"counters"`
	Rules       Ref            `json:"rules"`
	Days        map[string]Ref `json:"days,omitempty"` // YYYY-MM-DD → its rows (version 1)
	// DaysIndex names a value holding what Days holds (a JSON object,
	// YYYY-MM-DD → Ref) in its place: a commit rewrites it only when a day's
	// value changes, so that the record stays small with a year of days.
	DaysIndex *Ref `json:"days_index,omitempty"`
	// Deltas, when present, are the changes of the counters and the rules'
	// state committed since the snapshot that Counters and Rules name: the
	// state is the snapshot with each delta applied in commit order.
	Deltas *Chain `json:"deltas,omitempty"`
}

// Chain names the deltas after a snapshot. Each delta is stored under
// DeltaKey of the commit that wrote it (of the record's epoch: an owner's
// first commit writes a snapshot) and names the delta before it (EncodeDelta),
// so the record names only the newest.
type Chain struct {
	Head  Ref    `json:"head"`  // the newest delta
	First uint64 `json:"first"` // the commit that wrote the oldest
	Last  uint64 `json:"last"`  // the commit that wrote the newest
	Len   int    `json:"len"`   // deltas in the chain
	Bytes int    `json:"bytes"` // their total size
	// Chunks is the most chunks a delta of the chain has.
	Chunks int `json:"chunks"`
}

// format returns the version a record is written as.
func (rec *Record) format() int {
	if rec.Deltas != nil || rec.DaysIndex != nil {
		return VersionDeltas
	}
	return Version
}

// Ref names a value stored in chunks under Key.c0, Key.c1, ...
type Ref struct {
	Key    string `json:"key,omitempty"`
	Chunks int    `json:"chunks,omitempty"`
	Size   int    `json:"size,omitempty"`
	Hash   string `json:"xxh64,omitempty"`
}

// Store reads and writes the checkpoints of one stream and group.
type Store struct {
	kv            jetstream.KeyValue
	stream, group string
}

// BucketOptions configure the checkpoint bucket when it is created.
type BucketOptions struct {
	Bucket   string
	Replicas int
	Create   bool // create the bucket when missing
}

// OpenBucket binds (or creates) the checkpoint bucket.
func OpenBucket(ctx context.Context, js jetstream.JetStream, o BucketOptions) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, o.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) && o.Create {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      o.Bucket,
			Description: "FaceID exporter: partition checkpoints (stream position, counters, ledger)",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    max(o.Replicas, 1),
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, o.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint bucket %s: %w", o.Bucket, err)
	}
	return kv, nil
}

// NewStore returns the store of a stream's and group's checkpoints.
func NewStore(kv jetstream.KeyValue, stream, group string) *Store {
	return &Store{kv: kv, stream: stream, group: group}
}

// RecordKey returns the key of a partition's record.
func (s *Store) RecordKey(p int) string { return s.stream + "." + s.group + ".p" + strconv.Itoa(p) }

// RecordsPattern matches every partition record of the group.
func (s *Store) RecordsPattern() string { return s.stream + "." + s.group + ".*" }

// MemberKey returns the heartbeat key of a replica.
func (s *Store) MemberKey(instance string) string { return s.stream + "." + s.group + ".m." + instance }

// MembersPattern matches every member key of the group.
func (s *Store) MembersPattern() string { return s.stream + "." + s.group + ".m.*" }

// PartitionOf returns the partition a record key names.
func (s *Store) PartitionOf(key string) (int, bool) {
	rest, ok := strings.CutPrefix(key, s.stream+"."+s.group+".p")
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(rest)
	return p, err == nil && p >= 0
}

// KV returns the bucket.
func (s *Store) KV() jetstream.KeyValue { return s.kv }

// Load returns a partition's record and its revision.
func (s *Store) Load(ctx context.Context, p int) (*Record, uint64, error) {
	e, err := s.kv.Get(ctx, s.RecordKey(p))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("load checkpoint %s: %w", s.RecordKey(p), err)
	}
	rec, err := Decode(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("checkpoint %s: %w", s.RecordKey(p), err)
	}
	return rec, e.Revision(), nil
}

// Encode returns a record's stored form.
func Encode(rec *Record) ([]byte, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return data, nil
}

// Decode parses a record.
func Decode(data []byte) (*Record, error) {
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	switch {
	case rec.Version != Version && rec.Version != VersionDeltas:
		return nil, fmt.Errorf("record version %d, this exporter reads %d and %d", rec.Version, Version, VersionDeltas)
	case rec.Version != rec.format():
		return nil, fmt.Errorf("record version %d with deltas %v and a days index %v: a record has either exactly when its version is %d", rec.Version, rec.Deltas != nil, rec.DaysIndex != nil, VersionDeltas)
	case rec.DaysIndex != nil && len(rec.Days) > 0:
		return nil, errors.New("record with both days and a days index")
	}
	return &rec, nil
}

// Create writes a partition's first record; ErrFenced when one exists.
func (s *Store) Create(ctx context.Context, rec *Record) (uint64, error) {
	rec.Version = rec.format()
	data, err := Encode(rec)
	if err != nil {
		return 0, err
	}
	rev, err := s.kv.Create(ctx, s.RecordKey(rec.Partition), data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, ErrFenced
	}
	if err != nil {
		return 0, fmt.Errorf("create checkpoint %s: %w", s.RecordKey(rec.Partition), err)
	}
	return rev, nil
}

// Commit writes rec over revision rev; ErrFenced when the record changed
// since rev.
func (s *Store) Commit(ctx context.Context, rec *Record, rev uint64) (uint64, error) {
	rec.Version = rec.format()
	data, err := Encode(rec)
	if err != nil {
		return 0, err
	}
	nrev, err := s.kv.Update(ctx, s.RecordKey(rec.Partition), data, rev)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, ErrFenced
	}
	if err != nil {
		return 0, fmt.Errorf("commit checkpoint %s: %w", s.RecordKey(rec.Partition), err)
	}
	return nrev, nil
}

// DataKey returns the base key of a partition's value of a kind (counters,
// rules, dayYYYYMMDD) in an epoch's slot.
func (s *Store) DataKey(p int, epoch uint64, kind string, slot int) string {
	return fmt.Sprintf("%s.%s.d.p%d.e%d.%s.s%d", s.stream, s.group, p, epoch, kind, slot)
}

// DataPrefix returns the prefix of every data key of a partition, of every
// epoch: DataPrefix(p) + "e<epoch>.<kind>.s<slot>.c<chunk>".
func (s *Store) DataPrefix(p int) string {
	return fmt.Sprintf("%s.%s.d.p%d.", s.stream, s.group, p)
}

// Put stores data under base in chunks and returns its Ref.
func (s *Store) Put(ctx context.Context, base string, data []byte) (Ref, int, error) {
	ref := Ref{Key: base, Size: len(data), Hash: strconv.FormatUint(xxhash.Sum64(data), 16)}
	written := 0
	for off := 0; off < len(data) || ref.Chunks == 0; off += ChunkBytes {
		chunk := data[off:min(off+ChunkBytes, len(data))]
		if _, err := s.kv.Put(ctx, base+".c"+strconv.Itoa(ref.Chunks), chunk); err != nil {
			return Ref{}, written, fmt.Errorf("write %s: %w", base, err)
		}
		written += len(chunk)
		ref.Chunks++
		if len(data) == 0 {
			break
		}
	}
	return ref, written, nil
}

// Get reads what ref names and checks its hash.
func (s *Store) Get(ctx context.Context, ref Ref) ([]byte, error) {
	if ref.Key == "" {
		return nil, nil
	}
	data := make([]byte, 0, ref.Size)
	for i := 0; i < ref.Chunks; i++ {
		e, err := s.kv.Get(ctx, ref.Key+".c"+strconv.Itoa(i))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("read %s.c%d: %w: %w", ref.Key, i, ErrChanged, err)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s.c%d: %w", ref.Key, i, err)
		}
		data = append(data, e.Value()...)
	}
	if len(data) != ref.Size || strconv.FormatUint(xxhash.Sum64(data), 16) != ref.Hash {
		return nil, fmt.Errorf("read %s: %d bytes with hash %x, the record says %d bytes with hash %s: %w", ref.Key, len(data), xxhash.Sum64(data), ref.Size, ref.Hash, ErrChanged)
	}
	return data, nil
}

// Delete removes the chunks of refs (obsolete after a commit), ignoring
// those already gone.
func (s *Store) Delete(ctx context.Context, refs ...Ref) error {
	var errs []error
	for _, ref := range refs {
		for i := 0; i < ref.Chunks; i++ {
			if err := s.kv.Purge(ctx, ref.Key+".c"+strconv.Itoa(i)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Records returns every partition record of the group. Each is read by its
// key: a KV key listing can end before it has shown every key while the
// bucket is written to (nats-server#4824), so a listing only finds the
// number of partitions, which every record names.
func (s *Store) Records(ctx context.Context) (map[int]*Record, error) {
	first, _, err := s.Load(ctx, 0)
	n := 0
	switch {
	case err == nil:
		n = max(first.Partitions, 1)
	case errors.Is(err, ErrNotFound):
		// Partition 0 was never acquired: any other record names the count.
		if n, err = s.listedPartitions(ctx); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	out := map[int]*Record{}
	for p := 0; p < n; p++ {
		rec, _, err := s.Load(ctx, p)
		if errors.Is(err, ErrNotFound) {
			continue // never acquired: nothing committed
		}
		if err != nil {
			return nil, err
		}
		if rec.Partitions != n {
			return nil, fmt.Errorf("checkpoint %s names %d partitions, another record %d", s.RecordKey(p), rec.Partitions, n)
		}
		out[p] = rec
	}
	return out, nil
}

// View calls read with every partition record of the group (Records), for
// it to read the values they name with Get. A read longer than about one
// commit interval can meet a value a later commit replaced: when read
// returns ErrChanged, View reads the records again and calls read with them,
// at most ReadAttempts times in all, and then returns an error that says so.
func (s *Store) View(ctx context.Context, read func(recs map[int]*Record) error) error {
	var err error
	for attempt := 1; attempt <= ReadAttempts; attempt++ {
		var recs map[int]*Record
		if recs, err = s.Records(ctx); err != nil {
			return err
		}
		if err = read(recs); !errors.Is(err, ErrChanged) {
			return err
		}
	}
	return fmt.Errorf("checkpoints of stream %s and group %s changed during each of %d reads (a read must finish within about one commit interval): %w",
		s.stream, s.group, ReadAttempts, err)
}

// listedPartitions returns the partition count named by the first record a
// key listing shows (0: none).
func (s *Store) listedPartitions(ctx context.Context) (int, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, s.RecordsPattern())
	if err != nil {
		return 0, fmt.Errorf("list checkpoints: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	for key := range lister.Keys() {
		p, ok := s.PartitionOf(key)
		if !ok {
			continue
		}
		rec, _, err := s.Load(ctx, p)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return max(rec.Partitions, p+1), nil // Records reads and checks every one
	}
	if err := ctx.Err(); err != nil { // the lister stops early, silently, when ctx ends
		return 0, err
	}
	return 0, nil
}

// DayRefs returns the ledger days a record names, YYYY-MM-DD → Ref: its
// Days, or the value its DaysIndex names.
func (s *Store) DayRefs(ctx context.Context, rec *Record) (map[string]Ref, error) {
	if rec.DaysIndex == nil {
		return rec.Days, nil
	}
	data, err := s.Get(ctx, *rec.DaysIndex)
	if err != nil {
		return nil, err
	}
	var days map[string]Ref
	if err := json.Unmarshal(data, &days); err != nil {
		return nil, fmt.Errorf("days index %s: %w", rec.DaysIndex.Key, err)
	}
	return days, nil
}

// DayKind returns the data kind of a ledger day (YYYY-MM-DD).
func DayKind(day string) string { return "day" + strings.ReplaceAll(day, "-", "") }

// NextSlot returns the slot for the next write of a value whose committed
// Ref is ref, in epoch: the other slot of this epoch, or 0 when ref is from
// another epoch (or none).
func NextSlot(ref Ref, epochKey string) int {
	if strings.HasPrefix(ref.Key, epochKey) && strings.HasSuffix(ref.Key, ".s0") {
		return 1
	}
	return 0
}

// EpochPrefix returns the prefix of every data key of a partition's epoch.
func (s *Store) EpochPrefix(p int, epoch uint64) string {
	return fmt.Sprintf("%s.%s.d.p%d.e%d.", s.stream, s.group, p, epoch)
}
