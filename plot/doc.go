// Package plot reads the result files of SynCord's benchmarks (the
// artifact's formats and syncord's own, see SYNCORD-ABI.md section 4, and
// the tidy CSV that syncord-host experiment writes) and draws paper-style
// figures from them with gonum.org/v1/plot: throughput (or runtime, or
// fairness) against cores, one series per input, min/max error bars when
// a point was repeated, log2 core ticks when every point is a power of two.
//
// Parse recognises a file by its content, never by its name, and refuses a
// file it does not recognise, or a line it cannot read, with the file's
// name and the line number.
package plot
