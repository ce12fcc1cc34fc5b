package contention

//go:generate go tool bpf2go -cc clang -target bpfel -type lock_stat -type wait_stack -type caller_key -type caller_stat contention contention.bpf.c -- -mcpu=v3 -Wall -Werror -I/usr/include/x86_64-linux-gnu
