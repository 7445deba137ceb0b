// The program tests/api/fast_path_golden_test.sh measures: N malloc + free
// pairs, N operator new + sized operator delete pairs and N hak_malloc +
// hak_free pairs of 64 bytes, run with the release libhakmem.so preloaded.
// A block freed at once is handed out again by the next allocation's refill,
// so nearly every call takes the fast path.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <new>

namespace {
template <class T>
T opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}
}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? atol(argv[1]) : 1 << 20;
  using Malloc = void* (*)(size_t);
  using Free = void (*)(void*);
  auto hak_malloc = reinterpret_cast<Malloc>(dlsym(RTLD_DEFAULT, "hak_malloc"));
  auto hak_free = reinterpret_cast<Free>(dlsym(RTLD_DEFAULT, "hak_free"));
  if (hak_malloc == nullptr || hak_free == nullptr) {
    fprintf(stderr, "fast_path_driver: libhakmem.so is not preloaded\n");
    return 2;
  }
  for (long i = 0; i < n; ++i) free(opaque(malloc(opaque(size_t{64}))));
  for (long i = 0; i < n; ++i) ::operator delete(opaque(::operator new(opaque(size_t{64}))), size_t{64});
  for (long i = 0; i < n; ++i) hak_free(opaque(hak_malloc(opaque(size_t{64}))));
  return 0;
}
