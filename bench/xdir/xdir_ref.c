/*
 * xdir_ref: the minimal C loop the Go xdir driver is measured against
 * (workloads/xdir_perf_test.go builds it with gcc and runs both in turn).
 *
 * Same system calls per loop as the SynCord artifact's xDir-rename
 * benchmark: open(O_WRONLY|O_APPEND|O_CREAT) + close + rename + unlink of a
 * 36-character random name, even tasks renaming into DST_DIRTY, odd ones
 * into DST, task i pinned to CPU i. lock_hold is the rename's duration in
 * ns (clock_gettime(CLOCK_MONOTONIC) around it), as the Go driver measures
 * it on kernels without the SynCord rename syscall. Each thread has its own
 * rand_r state (the artifact's rand() takes a process-wide lock, which
 * would only make this baseline slower). Output as the artifact prints it.
 *
 * Usage: xdir_ref SRC DST_DIRTY DST DURATION BULLIES VICTIMS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	volatile int *stop;
	const char *src, *dst;
	int id;
	pthread_t thread;
	uint64_t lock_hold;
	int runs;
	char pad[64];
} task_t;

static const char charset[] =
	"1234567890abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void *worker(void *arg)
{
	task_t *t = arg;
	cpu_set_t mask;
	CPU_ZERO(&mask);
	CPU_SET(t->id, &mask);
	if (pthread_setaffinity_np(pthread_self(), sizeof(mask), &mask) != 0)
		perror("pthread_setaffinity_np");
	unsigned int seed = (unsigned int)time(NULL) ^ (t->id * 2654435761u);
	char src[512], dst[512];
	size_t ls = (size_t)snprintf(src, sizeof(src), "%s/", t->src);
	size_t ld = (size_t)snprintf(dst, sizeof(dst), "%s/", t->dst);
	uint64_t hold = 0;
	int runs = 0;
	while (!*t->stop) {
		for (int k = 0; k < 36; k++)
			src[ls + k] = dst[ld + k] = charset[rand_r(&seed) % (sizeof(charset) - 1)];
		src[ls + 36] = dst[ld + 36] = 0;
		int fd = open(src, O_WRONLY | O_APPEND | O_CREAT, 0644);
		if (fd < 0) {
			fprintf(stderr, "open %s: %s\n", src, strerror(errno));
			exit(1);
		}
		close(fd);
		uint64_t t0 = now_ns();
		if (rename(src, dst) < 0) {
			fprintf(stderr, "rename %s %s: %s\n", src, dst, strerror(errno));
			exit(1);
		}
		hold += now_ns() - t0;
		if (unlink(dst) < 0) {
			fprintf(stderr, "unlink %s: %s\n", dst, strerror(errno));
			exit(1);
		}
		runs++;
	}
	t->lock_hold = hold;
	t->runs = runs;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "Usage: %s src dst_dirty dst duration num_bully num_victim\n", argv[0]);
		return 1;
	}
	const int duration = atoi(argv[4]), bullies = atoi(argv[5]), victims = atoi(argv[6]);
	const int n = bullies + victims;
	volatile int stop = 0;
	task_t *tasks = calloc(n, sizeof(task_t));
	for (int i = 0; i < n; i++) {
		tasks[i].stop = &stop;
		tasks[i].src = argv[1];
		tasks[i].dst = (i % 2 == 0) ? argv[2] : argv[3];
		tasks[i].id = i;
		pthread_create(&tasks[i].thread, NULL, worker, &tasks[i]);
	}
	sleep(duration);
	stop = 1;
	for (int i = 0; i < n; i++)
		pthread_join(tasks[i].thread, NULL);
	double bh = 0, vh = 0;
	int br = 0, vr = 0;
	for (int i = 0; i < n; i += 2)
		printf("[b] task %d: lock_hold=%lu, runs=%d\n", i, tasks[i].lock_hold, tasks[i].runs);
	for (int i = 1; i < n; i += 2)
		printf("[v] task %d: lock_hold=%lu, runs=%d\n", i, tasks[i].lock_hold, tasks[i].runs);
	for (int i = 0; i < n; i++) {
		if (i % 2 == 0) {
			bh += tasks[i].lock_hold;
			br += tasks[i].runs;
		} else {
			vh += tasks[i].lock_hold;
			vr += tasks[i].runs;
		}
	}
	const double b = bh / bullies, v = vh / victims;
	printf("fairness=%f\n", (b + v) * (b + v) / ((b * b + v * v) * 2.f));
	printf("Ops/sec: %f\n", (double)(br + vr) / duration);
	printf("Bully  Ops/sec: %f\n", (double)br / duration);
	printf("Victim Ops/sec: %f\n", (double)vr / duration);
	free(tasks);
	return 0;
}
