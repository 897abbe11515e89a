/* A CPU list ("0-1,3", as /sys/devices/system/cpu/online spells it) into a cpu_set_t; shared by
 * the prelude (a pod's affinity) and the live executor (each tool call's). */
#ifndef CLAWPOD_CPULIST_H
#define CLAWPOD_CPULIST_H
#include <sched.h>
#include <stdlib.h>

/* 0 on a well-formed, non-empty list; -1 otherwise. */
static inline int cpulist_parse(const char *v, cpu_set_t *set) {
  const char *p = v;
  CPU_ZERO(set);
  for (;;) {
    char *end;
    if (*p < '0' || *p > '9') return -1;
    unsigned long lo = strtoul(p, &end, 10), hi = lo;
    if (*end == '-') {
      if (end[1] < '0' || end[1] > '9') return -1;
      hi = strtoul(end + 1, &end, 10);
    }
    if (hi < lo || hi >= CPU_SETSIZE) return -1;
    for (unsigned long c = lo; c <= hi; c++) CPU_SET(c, set);
    if (*end == 0) return 0;
    if (*end != ',') return -1;
    p = end + 1;
  }
}
#endif
