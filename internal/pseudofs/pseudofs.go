// Package pseudofs reads sysfs and procfs attributes the way they are meant
// to be read: one open, reads up to a bound, no stat-based sizing (their
// sizes are reported as 0 or 4096 whatever they hold).
package pseudofs

import (
	"fmt"
	"io"
	"os"
)

// Read returns at most max bytes of the pseudo-file at path; longer
// content is cut at max. An open error comes back unwrapped (so
// errors.Is(err, fs.ErrNotExist) works); a read error names the path.
func Read(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
