package tencentbill

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// PageFileName returns the offline layout's name of a page of a requested
// date: YYYY-MM-DD.N.json, N from 1.
func PageFileName(day ledger.Day, page int) string {
	return fmt.Sprintf("%s.%d.json", day, page)
}

var pageFileRE = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})\.([1-9][0-9]{0,5})\.json$`)

// Dir reads saved GetWeChatBillDetails responses from a directory, one file
// per page named as PageFileName says, each holding the body as the API
// returns it. A requested date without files has no bill data.
type Dir struct {
	path  string
	pages map[ledger.Day][]int // sorted page numbers
}

// OpenDir lists the directory and checks every .json file's name; other
// files are ignored.
func OpenDir(path string) (*Dir, error) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("bill dir: %w", err)
	}
	d := &Dir{path: path, pages: map[ledger.Day][]int{}}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		m := pageFileRE.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("bill dir %s: %s is not named YYYY-MM-DD.N.json (the requested date, the page from 1)", path, name)
		}
		day, err := ledger.ParseDay(m[1])
		if err != nil || day.String() != m[1] {
			return nil, fmt.Errorf("bill dir %s: %s: %q is not a calendar day", path, name, m[1])
		}
		n, _ := strconv.Atoi(m[2])
		d.pages[day] = append(d.pages[day], n)
	}
	for _, ps := range d.pages {
		sort.Ints(ps)
	}
	return d, nil
}

// Day implements Source.
func (d *Dir) Day(ctx context.Context, day ledger.Day) ([]Page, bool, error) {
	nums := d.pages[day]
	if len(nums) == 0 {
		return nil, false, nil
	}
	for i, n := range nums {
		if n != i+1 {
			return nil, false, fmt.Errorf("bill dir %s: %s is missing (%s exists)", d.path, PageFileName(day, i+1), PageFileName(day, n))
		}
	}
	pages := make([]Page, 0, len(nums))
	for _, n := range nums {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		name := filepath.Join(d.path, PageFileName(day, n))
		body, err := readFileLimited(name)
		if err != nil {
			return nil, false, err
		}
		p, err := Decode(name, body)
		if err != nil {
			return nil, false, err
		}
		last := n == len(nums)
		switch {
		case p.HasNextPage && last:
			return nil, false, fmt.Errorf("%s: Response.HasNextPage: true, but %s is missing", name, PageFileName(day, n+1))
		case !p.HasNextPage && !last:
			return nil, false, fmt.Errorf("%s: Response.HasNextPage: false, but %s exists", name, PageFileName(day, n+1))
		}
		pages = append(pages, p)
	}
	return pages, true, nil
}

func readFileLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read bill: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read bill: %w", err)
	}
	if st.Size() > MaxBodyBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxBodyBytes)
	}
	body, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read bill: %w", err)
	}
	return body, nil
}

// SaveDay writes the pages of a requested date into dir in the offline
// layout, without Idcard and Name, replacing what was saved for that date
// before. Each file is written whole (a temporary file renamed).
func SaveDay(dir string, day ledger.Day, pages []Page) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("save bill: %w", err)
	}
	for i, p := range pages {
		body, err := p.Encode()
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(dir, PageFileName(day, i+1)), body); err != nil {
			return err
		}
	}
	// Pages beyond the new last one are from an earlier fetch: remove them.
	for n := len(pages) + 1; ; n++ {
		err := os.Remove(filepath.Join(dir, PageFileName(day, n)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("save bill: %w", err)
		}
	}
}

func writeFileAtomic(name string, body []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return fmt.Errorf("save bill: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(body)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o640)
	}
	if werr == nil {
		werr = os.Rename(tmp, name)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("save bill %s: %w", name, werr)
	}
	return nil
}
