// Diagnostic for docs/benchmarks/serving.md ("Two scheduling ideas that did not help"), not part
// of the build: asks the kernel (EEVDF, Linux 6.12+) for a custom time slice of ARGV[1] ns
// for this process and its future threads, then runs ARGV[2...]. gcc -O2 -o slice short-slice.c
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdint.h>
#include <sys/syscall.h>
struct sched_attr { uint32_t size, sched_policy; uint64_t sched_flags; int32_t sched_nice; uint32_t sched_priority; uint64_t sched_runtime, sched_deadline, sched_period; uint32_t util_min, util_max; };
int main(int argc, char** argv) {
  struct sched_attr a; memset(&a, 0, sizeof a); a.size = sizeof a; a.sched_policy = 0; a.sched_runtime = strtoull(argv[1], 0, 10);
  if (syscall(SYS_sched_setattr, 0, &a, 0) != 0) { perror("sched_setattr"); return 1; }
  execv(argv[2], argv + 2); perror("exec"); return 1;
}
