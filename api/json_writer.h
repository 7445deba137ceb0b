// A JSON writer that never allocates: it builds the text in a fixed buffer
// on the stack and writes it to a file descriptor with write(2) whenever the
// buffer fills, and at flush(). Commas between members and elements are
// placed by the writer. Used for hak_print_stats_json.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hakmem {

class JsonWriter {
 public:
  explicit JsonWriter(int fd) noexcept : fd_(fd) {}
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;
  ~JsonWriter() { flush(); }

  JsonWriter& begin_object() noexcept { return open('{'); }
  JsonWriter& end_object() noexcept { return close('}'); }
  JsonWriter& begin_array() noexcept { return open('['); }
  JsonWriter& end_array() noexcept { return close(']'); }
  // The name of the next member of the current object.
  JsonWriter& key(const char* name) noexcept;
  JsonWriter& u64(uint64_t v) noexcept;
  JsonWriter& boolean(bool v) noexcept;
  JsonWriter& string(const char* s) noexcept;  // escaped as JSON requires
  // key(name) followed by a value.
  JsonWriter& field(const char* name, uint64_t v) noexcept { return key(name).u64(v); }
  JsonWriter& field(const char* name, const char* s) noexcept { return key(name).string(s); }
  JsonWriter& field_bool(const char* name, bool v) noexcept { return key(name).boolean(v); }
  // A raw character outside any value (the final newline).
  JsonWriter& raw(char c) noexcept;
  void flush() noexcept;

 private:
  static constexpr int kMaxDepth = 16;
  JsonWriter& open(char c) noexcept;
  JsonWriter& close(char c) noexcept;
  void before_value() noexcept;
  void put(char c) noexcept;
  void put(const char* s) noexcept;

  int fd_;
  int depth_ = 0;
  bool after_key_ = false;
  bool has_members_[kMaxDepth] = {};
  size_t len_ = 0;
  char buf_[2048];
};

}  // namespace hakmem
