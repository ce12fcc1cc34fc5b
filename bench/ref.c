/*
 * ref.c: minimal C reference loops for syncord's driver performance check
 * (bench/cmpref). Same system calls as the Go drivers, same placement and
 * 128-byte counter stride, nothing else.
 *
 *   ref TEST TASKS SECONDS CORES_PER_SOCKET [ROOT]
 *
 * TEST is lock1, page_fault1, futex1 (will-it-scale: ops/s over SECONDS
 * after a 1 s warmup) or MWRL (fxmark: renames/s over the whole run, in
 * ROOT/<id>). Prints one line: the ops/s; the operations of the whole
 * run per second of process CPU time (all threads, from the start signal
 * to the stop); and per second of the workers' own thread CPU time. The
 * last two do not change with the machine's other load.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define STRIDE 128
#define MEMSIZE (128UL << 20)

static char *counters;
static int ntasks, cps;
static const char *test, *root;
static atomic_int nready;
static atomic_int go;
static atomic_int stop;
static double thread_cpu[1024];

static double tcpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile unsigned long long *counter(int i)
{
	return (volatile unsigned long long *)(counters + (size_t)i * STRIDE);
}

/* SYNCORD-ABI.md section 3. */
static int place(int i, int n, int c)
{
	if (n >= c || i == 0 || i < n / 2)
		return i;
	return (i - n / 2) + c / 2;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void wait_go(int id)
{
	atomic_fetch_add(&nready, 1);
	while (!atomic_load_explicit(&go, memory_order_acquire))
		;
	thread_cpu[id] = tcpu();
}

static int running(void)
{
	return !atomic_load_explicit(&stop, memory_order_relaxed);
}

/* Writes n in decimal followed by ".dat" and NUL at p. */
static void put_num(char *p, unsigned long long n)
{
	char tmp[24];
	int i = 0;
	do {
		tmp[i++] = '0' + n % 10;
		n /= 10;
	} while (n);
	while (i)
		*p++ = tmp[--i];
	memcpy(p, ".dat", 5);
}

static void *worker(void *arg)
{
	int id = (int)(long)arg;
	volatile unsigned long long *it = counter(id);
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(place(id, ntasks, cps), &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");

	if (!strcmp(test, "lock1")) {
		char tmpl[] = "/tmp/syncord-ref.XXXXXX";
		int fd = mkstemp(tmpl);
		struct flock lk;

		if (fd < 0)
			die("mkstemp");
		unlink(tmpl);
		wait_go(id);
		while (running()) {
			lk.l_type = F_WRLCK;
			lk.l_whence = SEEK_SET;
			lk.l_start = 0;
			lk.l_len = 1;
			if (fcntl(fd, F_SETLKW, &lk))
				die("fcntl");
			lk.l_type = F_UNLCK;
			if (fcntl(fd, F_SETLKW, &lk))
				die("fcntl");
			*it += 2;
		}
		close(fd);
	} else if (!strcmp(test, "page_fault1")) {
		long pg = getpagesize();

		wait_go(id);
		while (running()) {
			char *c = mmap(NULL, MEMSIZE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (c == MAP_FAILED)
				die("mmap");
			for (unsigned long i = 0; i < MEMSIZE; i += pg) {
				c[i] = 0;
				(*it)++;
			}
			munmap(c, MEMSIZE);
		}
	} else if (!strcmp(test, "futex1")) {
		unsigned int word = 0;

		wait_go(id);
		while (running()) {
			syscall(SYS_futex, &word, FUTEX_WAKE, 1, NULL, NULL, 0);
			(*it)++;
		}
	} else if (!strcmp(test, "MWRL")) {
		char a[4096], b[4096], *from = a, *to = b, *t;
		size_t plen;
		unsigned long long n = 0;
		int fd;

		snprintf(a, sizeof(a), "%s/%d", root, id);
		if (mkdir(a, 0755) && errno != EEXIST)
			die("mkdir");
		plen = (size_t)snprintf(a, sizeof(a), "%s/%d/n_file_rename-", root, id);
		memcpy(b, a, plen);
		put_num(a + plen, 0);
		fd = open(a, O_CREAT | O_RDWR, 0700);
		if (fd < 0)
			die("open");
		fsync(fd);
		close(fd);
		wait_go(id);
		while (running()) {
			put_num(to + plen, n + 1);
			if (rename(from, to))
				die("rename");
			n++;
			t = from, from = to, to = t;
			(*it)++;
		}
		unlink(from);
		snprintf(a, sizeof(a), "%s/%d", root, id);
		rmdir(a);
	} else {
		fprintf(stderr, "unknown test %s\n", test);
		exit(2);
	}
	thread_cpu[id] = tcpu() - thread_cpu[id];
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long sum(void)
{
	unsigned long long s = 0;
	for (int i = 0; i < ntasks; i++)
		s += *counter(i);
	return s;
}

int main(int argc, char **argv)
{
	pthread_t th[1024];
	int secs;

	if (argc < 5) {
		fprintf(stderr, "usage: %s TEST TASKS SECONDS CORES_PER_SOCKET [ROOT]\n", argv[0]);
		return 2;
	}
	test = argv[1];
	ntasks = atoi(argv[2]);
	secs = atoi(argv[3]);
	cps = atoi(argv[4]);
	root = argc > 5 ? argv[5] : "/tmp";
	if (ntasks <= 0 || ntasks > 1024 || secs <= 0 || cps <= 0) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	counters = mmap(NULL, (size_t)ntasks * STRIDE, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (counters == MAP_FAILED)
		die("mmap");
	for (long i = 0; i < ntasks; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)i))
			die("pthread_create");
	while (atomic_load(&nready) < ntasks)
		usleep(1000);

	double t0 = now(), t1, t2, c0 = cpu_now(), c1;
	unsigned long long s0 = 0, s1, s2;
	atomic_store_explicit(&go, 1, memory_order_release);
	if (!strcmp(test, "MWRL")) {
		/* fxmark: works over the whole run. */
		usleep(secs * 1000000);
		t2 = now();
		s1 = sum();
		t1 = t0;
	} else {
		/* will-it-scale: one warmup second, then the window. */
		usleep(1000000);
		t1 = now();
		s0 = sum();
		usleep(secs * 1000000);
		t2 = now();
		s1 = sum();
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < ntasks; i++)
		pthread_join(th[i], NULL);
	c1 = cpu_now();
	s2 = sum();
	double tc = 0;
	for (int i = 0; i < ntasks; i++)
		tc += thread_cpu[i];
	printf("%.1f %.1f %.1f\n", (double)(s1 - s0) / (t2 - t1), (double)s2 / (c1 - c0), (double)s2 / tc);
	return 0;
}
