package metis

import (
	"bytes"
	"context"
	"regexp"
	"sort"
	"testing"

	"github.com/syncord/syncord/workloads"
)

func TestMetisGenerate(t *testing.T) {
	buf := make([]byte, 64)
	Generate(buf, 40)
	// The LCG seed=seed*1103515245+12345 from seed 0, rnd=seed&0x7fffffff,
	// letter rnd%26: the first rnd is 12345, so the first letter is 'V'.
	var seed uint32
	var want []byte
	for i := 0; i < 10; i++ {
		for j := 0; j < 3; j++ {
			seed = seed*1103515245 + 12345
			want = append(want, byte((seed&0x7fffffff)%26)+'A')
		}
		want = append(want, ' ')
	}
	if buf[0] != 'V' || !bytes.Equal(buf[:40], want) {
		t.Errorf("input %q, want %q", buf[:40], want)
	}
	if !bytes.Equal(buf[40:], make([]byte, 24)) {
		t.Error("bytes past inputsize are not zero")
	}
}

func TestMetisSplits(t *testing.T) {
	in := []byte("AAA BBB CCC DDD EEE\x00\x00\x00")
	for _, tc := range []struct {
		name    string
		nsplits int
	}{{"one", 1}, {"three", 3}, {"more than words", 40}} {
		t.Run(tc.name, func(t *testing.T) {
			sp := metisSplits(in, uint64(len(in)), tc.nsplits)
			var pos uint64
			for _, s := range sp {
				if s[0] != pos || s[1] <= s[0] {
					t.Fatalf("splits %v not contiguous", sp)
				}
				if e := s[1]; e < uint64(len(in)) && in[e] != ' ' && in[e] != 0 {
					t.Fatalf("split %v ends inside a word", s)
				}
				pos = s[1]
			}
			if pos != uint64(len(in)) {
				t.Fatalf("splits %v do not cover the input", sp)
			}
		})
	}
}

func TestMetisMapWords(t *testing.T) {
	s := newMetisMapStore()
	defer s.arena.release()
	in := []byte("it's a Dog, dog-DOG 9x 'q abcdefghij abcdefghij")
	if err := metisMap(in, 100, s); err != nil {
		t.Fatal(err)
	}
	got := map[string][]uint64{}
	for i := range s.keys {
		got[s.keys[i].name] = s.copyValues(&s.keys[i], nil)
	}
	want := map[string][]uint64{"IT'S": {100}, "A": {105}, "DOG": {107, 112, 116}, "X": {121}, "Q": {124}, "ABCDEFGHIJ": {126, 137}}
	if len(got) != len(want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	for k, v := range want {
		if !equalU64(got[k], v) {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var metisOutRE = regexp.MustCompile(`\ARuntime in milliseconds \[\d+ cores\]\n\tSample:\t\d+\tMap:\t\d+\tReduce:\t\d+\tMerge:\t\d+\tSum:\t\d+\tReal:\t\d+\t\nNumber of Tasks\n\tSample:\t\d+\tMap:\t\d+\tReduce:\t\d+\t\n\nwordreverseindex: results \(TOP \d+ from \d+ keys, \d+ words\):\n( {12}[A-Z]{3} - \d+\n)+\z`)

// TestMetisKnownAnswer checks a run against a plain single-threaded count
// of the same generated input.
func TestMetisKnownAnswer(t *testing.T) {
	const mb = 4
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"sampled", Config{Procs: 1, InputMB: mb, Top: 7}},
		{"two workers", Config{Procs: min(2, workloads.UsableCPUs()), InputMB: mb, Top: 7}},
		{"fixed tasks", Config{Procs: 1, InputMB: mb, Top: 7, MapTasks: 5, ReduceTasks: 13}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prog bytes.Buffer
			cfg := tc.cfg
			cfg.Progress = &prog
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if prog.String() != "Starting mapreduce\nFinished mapreduce\n" {
				t.Errorf("progress %q", prog.String())
			}
			in := make([]byte, mb<<20)
			Generate(in, mb<<20)
			counts := map[string]int{}
			for i := 0; i+3 <= len(in); i += 4 {
				counts[string(in[i:i+3])]++
			}
			keys := make([]string, 0, len(counts))
			for k := range counts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if res.Keys != len(keys) || res.Words != (mb<<20)/4 {
				t.Errorf("keys %d words %d, want %d and %d", res.Keys, res.Words, len(keys), (mb<<20)/4)
			}
			if len(res.Top) != 7 {
				t.Fatalf("top has %d keys", len(res.Top))
			}
			for i, k := range res.Top {
				if k.Key != keys[i] || k.Count != counts[keys[i]] {
					t.Errorf("top %d: %+v, want %s - %d", i, k, keys[i], counts[keys[i]])
				}
			}
			if tc.cfg.ReduceTasks != 0 {
				if res.SampledSplits != 0 || res.ReduceTasks != 13 || res.MapSplits < 5 || res.MapSplits > 6 {
					t.Errorf("tasks: %+v", res)
				}
			} else if res.SampledSplits == 0 || res.ReduceTasks < uint32(16*res.Procs) {
				t.Errorf("sampling: %d sampled, %d reduce tasks", res.SampledSplits, res.ReduceTasks)
			}
			var out bytes.Buffer
			res.WriteText(&out)
			if !metisOutRE.Match(out.Bytes()) {
				t.Errorf("output format:\n%q", out.String())
			}
			out.Reset()
			res.quiet = true // -q
			res.WriteText(&out)
			if bytes.Contains(out.Bytes(), []byte("wordreverseindex")) {
				t.Error("-q printed the results")
			}
		})
	}
}

// TestMetisFaultsInMappedMemory makes sure the input and the intermediate
// positions live in anonymous mappings the run faults in page by page and
// unmaps: minor faults (getrusage) cover at least every 4 KiB page of the
// input and of both phases' position arrays, and every mmap is undone.
func TestMetisFaultsInMappedMemory(t *testing.T) {
	const mb = 16
	res, err := Run(context.Background(), Config{Procs: min(2, workloads.UsableCPUs()), InputMB: mb})
	if err != nil {
		t.Fatal(err)
	}
	pages := uint64(mb<<20) / 4096               // input
	pages += 2 * (uint64(mb<<20) / 4 * 8) / 4096 // map and reduce positions
	if res.MinorFaults < pages {
		t.Errorf("%d minor faults, want >= %d (one per page of input and intermediates)", res.MinorFaults, pages)
	}
	if res.Mmaps != res.Munmaps || res.Mmaps < 1+2*uint64(mb<<20)/4*8/metisChunk {
		t.Errorf("mmaps %d, munmaps %d", res.Mmaps, res.Munmaps)
	}
	t.Logf("%d minor faults for %d pages; %d mmaps", res.MinorFaults, pages, res.Mmaps)
}
