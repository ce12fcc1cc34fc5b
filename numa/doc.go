// Package numa reads CPU and NUMA topology from a sysfs tree and derives
// what the drivers and the host need from it: sockets, cores per socket, SMT,
// the fast/slow role of every CPU, the placement rule of the SynCord
// artifact and the sweep points of runtest.py. Every reader takes a root
// (NewFS("/sys") for the live system, a captured tree under testdata in
// tests); nothing here hard-codes /sys. cpufreq readers and writers live
// here too.
package numa
