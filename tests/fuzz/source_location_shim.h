// Force-included (-include) by tools/fuzz.sh when compiling with clang 14.
//
// libstdc++ 12 defines std::source_location only when the compiler has
// __builtin_source_location, which clang gained in version 15. hakmem's
// atomics policies take a std::source_location argument for Relacy's
// benefit and otherwise ignore it, so a stand-in whose current() knows
// nothing is enough for the fuzzing build.
#pragma once

#include <cstdint>
#include <source_location>

#if !defined(__cpp_lib_source_location)
namespace std {
struct source_location {
  static constexpr source_location current() noexcept { return source_location(); }
  constexpr uint_least32_t line() const noexcept { return 0; }
  constexpr uint_least32_t column() const noexcept { return 0; }
  constexpr const char* file_name() const noexcept { return ""; }
  constexpr const char* function_name() const noexcept { return ""; }
};
}  // namespace std
#endif
