#include "api/json_writer.h"

#include "platform/os.h"

namespace hakmem {

void JsonWriter::put(char c) noexcept {
  if (len_ == sizeof(buf_)) flush();
  buf_[len_++] = c;
}

void JsonWriter::put(const char* s) noexcept {
  while (*s) put(*s++);
}

void JsonWriter::flush() noexcept {
  if (len_ == 0) return;
  os::write_all(fd_, buf_, len_);
  len_ = 0;
}

void JsonWriter::before_value() noexcept {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (depth_ > 0 && depth_ <= kMaxDepth) {
    if (has_members_[depth_ - 1]) put(',');
    has_members_[depth_ - 1] = true;
  }
}

JsonWriter& JsonWriter::open(char c) noexcept {
  before_value();
  put(c);
  if (depth_ < kMaxDepth) has_members_[depth_] = false;
  ++depth_;
  return *this;
}

JsonWriter& JsonWriter::close(char c) noexcept {
  if (depth_ > 0) --depth_;
  put(c);
  return *this;
}

JsonWriter& JsonWriter::key(const char* name) noexcept {
  before_value();
  put('"');
  put(name);  // keys are hakmem's own identifiers: nothing to escape
  put("\":");
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::u64(uint64_t v) noexcept {
  before_value();
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = char('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) put(tmp[--n]);
  return *this;
}

JsonWriter& JsonWriter::boolean(bool v) noexcept {
  before_value();
  put(v ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::string(const char* s) noexcept {
  before_value();
  put('"');
  for (; *s; ++s) {
    const unsigned char c = static_cast<unsigned char>(*s);
    if (c == '"' || c == '\\') {
      put('\\');
      put(char(c));
    } else if (c < 0x20) {
      put("\\u00");
      put("0123456789abcdef"[c >> 4]);
      put("0123456789abcdef"[c & 15]);
    } else {
      put(char(c));
    }
  }
  put('"');
  return *this;
}

JsonWriter& JsonWriter::raw(char c) noexcept {
  put(c);
  return *this;
}

}  // namespace hakmem
