package rawsys

import "golang.org/x/sys/unix"

// sysFstatat is stat(2)'s system call on this architecture.
const sysFstatat = unix.SYS_NEWFSTATAT
