// Package fxmark is the SynCord fork of FxMark's metadata and data
// microbenchmarks (MWRL, MWCM, DWOL, ...): Run runs one type on the
// workloads engine and (*Result).WriteText prints fxmark's report lines;
// Sweep runs a type over core counts as run-fxmark.py does and
// (*SweepResult).WriteText prints the plotter's .dat file.
package fxmark
