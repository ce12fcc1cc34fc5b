// Package wis is will-it-scale, the artifact's threads build (and its
// _processes build): Run runs one test on the workloads engine, writing
// the suite's lines ("done", "testcase:", "warmup", one sample line a
// second, "measurement") to Config.Progress as it goes, and
// (*Result).WriteText prints the closing "average:T:F:S"; Sweep is
// runtest.py over task counts, (*SweepResult).WriteText its output.
package wis
