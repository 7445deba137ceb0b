// A program as a team that adopts hakmem builds it for its sanitizer runs,
// compiled outside Bazel by sanitizer_preload_test.sh with gcc or clang and
// -fsanitize=... (or without, for Valgrind), then run with the release
// libhakmem.so preloaded.
//
//   sanitized_program workload [ROUNDS]
//                                the string workload; prints "ok". If
//                                libhakmem.so is in the process, checks
//                                that malloc and new are not served by it.
//   sanitized_program overflow   writes one byte past a heap block (ASan,
//                                Memcheck)
//   sanitized_program race       two threads write a heap int (TSan)
//   sanitized_program uninit     branches on an uninitialised heap int (MSan)
// The last three are the controls: the sanitizer must report them, which
// shows that it, not hakmem, watches the heap.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "tests/api/string_workload.h"

namespace {

// Hides a value from the optimiser.
template <class T>
T opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}

int workload(unsigned rounds) {
  if (const unsigned bad = hakmem_test::run_string_workload(4, rounds); bad != 0) {
    printf("%u strings arrived damaged\n", bad);
    return 1;
  }
  using Owns = int (*)(const void*);
  if (auto owns = reinterpret_cast<Owns>(dlsym(RTLD_DEFAULT, "hak_owns"))) {
    void* p = malloc(24);
    int* q = new int(7);
    const bool hakmem_serves = owns(p) || owns(q);
    free(p);
    delete q;
    if (hakmem_serves) {
      printf("malloc or new was served by hakmem in a sanitizer's process\n");
      return 1;
    }
  }
  printf("ok\n");
  return 0;
}

int overflow() {
  // opaque: neither the optimiser nor UBSan's object-size check knows the
  // block's size, so only the sanitizer's allocator can tell.
  char* p = opaque(static_cast<char*>(malloc(16)));
  static_cast<volatile char*>(p)[opaque(16)] = 1;  // volatile: not a dead store
  free(p);
  return 0;
}

int race() {
  int* shared = new int(0);
  std::thread a([shared] { for (int i = 0; i < 1000; ++i) ++*opaque(shared); });
  std::thread b([shared] { for (int i = 0; i < 1000; ++i) ++*opaque(shared); });
  a.join();
  b.join();
  delete shared;
  return 0;
}

int uninit() {
  int* p = static_cast<int*>(malloc(sizeof(int)));
  if (*opaque(p) == 42) printf("forty-two\n");
  free(p);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "workload";
  if (strcmp(mode, "workload") == 0) return workload(argc > 2 ? unsigned(atoi(argv[2])) : 20000);
  if (strcmp(mode, "overflow") == 0) return overflow();
  if (strcmp(mode, "race") == 0) return race();
  if (strcmp(mode, "uninit") == 0) return uninit();
  fprintf(stderr, "usage: %s [workload|overflow|race|uninit]\n", argv[0]);
  return 2;
}
