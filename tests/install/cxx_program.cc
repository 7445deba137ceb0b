// Built against an installed hakmem (pkg-config or CMake): operator new,
// the standard containers and threads run on hakmem. Prints "ok VERSION".
#include <hakmem.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

int main() {
  auto owned = std::make_unique<int>(42);
  if (!hak_owns(owned.get())) {
    std::fprintf(stderr, "cxx_program: new is not hakmem's\n");
    return 1;
  }
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> results(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &results] {
      std::map<int, std::string> m;
      for (int i = 0; i < 10000; ++i) m[i] = std::string(size_t(i % 100), char('a' + t));
      for (auto& [k, v] : m) results[t].push_back(std::move(v));
    });
  }
  for (auto& th : threads) th.join();
  results.clear();  // frees blocks of other threads' slabs (remote frees)
  if (hak_check() != 0) return 1;
  std::printf("ok %s\n", hak_version());
  return 0;
}
