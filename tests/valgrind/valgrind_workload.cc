// A program for Memcheck: hakmem is its malloc (//api:hakmem_valgrind,
// the overrides with Valgrind client requests), and it exercises the whole
// allocation family from several threads, with cross-thread frees, threads
// exiting with live blocks, reallocs, large blocks, C++ containers and libc
// functions that allocate internally. Everything it allocates it frees.
//
//   valgrind_workload                 must be clean: no error, nothing lost
//   valgrind_workload leak            leaks two blocks: Memcheck must say so
//   valgrind_workload use-after-free  writes to a freed block: must be reported
//
// The last two are negative controls: they show Memcheck really sees
// hakmem's blocks (without the client requests it would see neither).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "api/hakmem.h"

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

size_t pick_size(Rng& r) {
  const uint64_t x = r.next();
  switch (x % 16) {
    case 0:
      return 40000 + x % 300000;  // large
    case 1:
    case 2:
      return 1024 + x % 31000;
    default:
      return 1 + x % 600;
  }
}

constexpr unsigned kThreads = 4;
constexpr unsigned kOpsPerThread = 6000;
std::atomic<void*> g_exchange[64];
std::atomic<int> g_bad{0};

void worker(unsigned t) {
  Rng r{t * 7919 + 1};
  std::vector<std::pair<char*, size_t>> live;
  for (unsigned i = 0; i < kOpsPerThread; ++i) {
    const uint64_t op = r.next() % 10;
    if (op < 4 || live.empty()) {
      const size_t n = pick_size(r);
      char* p;
      switch (r.next() % 4) {
        case 0:
          p = static_cast<char*>(calloc(1, n));
          for (size_t k = 0; k < n; k += 97) {
            if (p[k] != 0) g_bad.fetch_add(1);
          }
          break;
        case 1: {
          void* q = nullptr;
          if (posix_memalign(&q, 64, n) != 0) q = nullptr;
          p = static_cast<char*>(q);
          break;
        }
        case 2:
          p = static_cast<char*>(aligned_alloc(32, (n + 31) & ~size_t{31}));
          break;
        default:
          p = static_cast<char*>(malloc(n));
      }
      if (p == nullptr) {
        g_bad.fetch_add(1);
        continue;
      }
      memset(p, int(n & 0xff), n);
      if (r.next() % 3 == 0) {
        // Hand it to another thread, which frees it (cross-thread free).
        if (void* old = g_exchange[r.next() % 64].exchange(p)) free(old);
      } else {
        live.emplace_back(p, n);
      }
    } else if (op < 6) {
      auto& [p, n] = live[r.next() % live.size()];
      const size_t m = pick_size(r);
      char* q = static_cast<char*>(realloc(p, m));
      if (q == nullptr) {
        g_bad.fetch_add(1);
        continue;
      }
      const size_t keep = n < m ? n : m;
      for (size_t k = 0; k < keep; k += 61) {
        if (q[k] != char(n & 0xff)) g_bad.fetch_add(1);
      }
      memset(q, int(m & 0xff), m);
      p = q;
      n = m;
    } else {
      const size_t k = r.next() % live.size();
      free(live[k].first);
      live[k] = live.back();
      live.pop_back();
    }
  }
  // Leave some blocks live at exit for half the threads: another thread
  // frees them after this one is gone (its slabs are abandoned meanwhile).
  if (t % 2 == 0) {
    for (auto& [p, n] : live) {
      if (void* old = g_exchange[r.next() % 64].exchange(p)) free(old);
    }
  } else {
    for (auto& [p, n] : live) free(p);
  }
}

void cxx_and_libc() {
  std::map<std::string, std::vector<int>> m;
  for (int i = 0; i < 2000; ++i) m["key" + std::to_string(i * 7919)].assign(size_t(i % 50), i);
  m.clear();
  char* d = strdup("duplicated by libc through malloc");
  free(d);
  FILE* f = fopen("/dev/null", "w");
  if (f != nullptr) {
    for (int i = 0; i < 100; ++i) fprintf(f, "%d %s\n", i, std::string(size_t(i), 'x').c_str());
    fclose(f);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  for (auto& slot : g_exchange) free(slot.exchange(nullptr));
  cxx_and_libc();

  if (mode == "leak") {
    void* lost = malloc(100);
    memset(lost, 1, 100);
    int* lost_array = new int[10];
    lost_array[0] = 1;
    lost = nullptr;
    lost_array = nullptr;
  } else if (mode == "use-after-free") {
    char* p = static_cast<char*>(malloc(200));
    free(p);
    p[100] = 1;  // beyond hakmem's 16 bytes of free-list metadata
  }

  const size_t problems = hak_check();
  printf("valgrind_workload: %u threads x %u operations, %d content errors, hak_check %zu\n",
         kThreads, kOpsPerThread, g_bad.load(), problems);
  return g_bad.load() == 0 && problems == 0 ? 0 : 3;
}
