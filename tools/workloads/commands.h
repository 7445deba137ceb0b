// The workload subcommands defined outside workloads.cc, grouped by what they
// stress: cross_thread.cc (blocks that change threads) and single_thread.cc
// (one thread's small-object speed).
#pragma once

#include "tools/workloads/harness.h"

namespace workloads {

int BatchHandoff(Options& o);
int Lifetimes(Options& o);
int SmallChurn(Options& o);
int Trees(Options& o);
int MixedLoop(Options& o);
int Pair(Options& o);

}  // namespace workloads
