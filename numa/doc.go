// Package numa reads CPU and NUMA topology from a sysfs tree and derives
// what the drivers and the host need from it: sockets, cores per socket, SMT,
// the fast/slow role of every CPU, the placement rule of the SynCord
// artifact, the sweep points and the header of runtest.py. Every reader
// takes a root (NewFS("/sys") for the live system, a captured tree under
// testdata in tests); nothing here hard-codes /sys.
//
// FS.Topology reads /sys/devices/system/cpu/{online,possible,present},
// /sys/devices/system/node/{online,nodeN/{cpulist,meminfo,distance}} and per
// CPU cpuN/topology/* and cpuN/cpufreq/*, one bounded read per file; errors
// name the file. FS.SetCPUFreqMinMax writes cpuN/cpufreq/scaling_{min,max}_freq
// for the host's AMP emulation.
//
// FS.Snapshot and FS.Capture copy exactly the files the reader uses; that is
// how the fixtures under testdata are made (make fixtures: this machine with
// numa/internal/capture, the e2e VMs with `syncord topology --capture -`,
// the synthesized and derived trees with numa/internal/synth). Each fixture
// has a README.md saying whether it was captured, derived or synthesized.
package numa
