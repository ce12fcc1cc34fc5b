package image

import (
	"strings"
	"testing"
)

// TestSizeBounds: a size mkfs.ext4 cannot make is refused by name before
// anything runs (issue 11 item 14).
func TestSizeBounds(t *testing.T) {
	for _, tc := range []struct {
		mb   int
		want string
	}{
		{100, "too small"},
		{MaxSizeMB + 1, "larger than 16777216 MiB"},
		{9999999999 << 10, "larger than"},
	} {
		o := Options{Output: "x.img", SizeMB: tc.mb, Suite: "bookworm"}
		err := o.defaults()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SizeMB %d: %v, want an error containing %q", tc.mb, err, tc.want)
		}
	}
}
