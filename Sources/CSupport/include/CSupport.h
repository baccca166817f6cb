#ifndef MDFLOW_CSUPPORT_H
#define MDFLOW_CSUPPORT_H
#include <stddef.h>
#include <stdint.h>

/// Keeps large blocks inside the process: glibc otherwise returns every block over 32 MiB to
/// the system and pays ~10k page faults to get it back (swift-pitfalls §2.3).
void mdflow_tune_malloc(void);

#endif
