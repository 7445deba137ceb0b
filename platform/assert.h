// HAKMEM_ASSERT(cond, what): a precondition or invariant that the code relies
// on. Checked only in debug builds (--config=debug, -DHAKMEM_DEBUG=1), where a
// failure writes one line with write(2) and aborts; elsewhere it compiles to
// nothing, so release hot paths pay nothing. `what` says what broke, in the
// words of docs/design.md.
#pragma once

#include "platform/compiler.h"

#if defined(HAKMEM_DEBUG) && HAKMEM_DEBUG
namespace hakmem::platform {
[[noreturn]] void assertion_failed(const char* what, const char* expr, const char* file,
                                   int line) noexcept;
}
#define HAKMEM_ASSERT(cond, what)                                                         \
  do {                                                                                    \
    if (HAKMEM_UNLIKELY(!(cond))) {                                                       \
      ::hakmem::platform::assertion_failed(what, #cond, __FILE__, __LINE__);              \
    }                                                                                     \
  } while (0)
#else
#define HAKMEM_ASSERT(cond, what) \
  do {                            \
  } while (0)
#endif
