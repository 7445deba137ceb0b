// A small multithreaded C++ workload of the kind a server's stress test
// runs: threads build and drop std::strings, and hand some of them to the
// next thread, which checks and frees them. Header-only, so that programs
// built outside Bazel (sanitizer_preload_test.sh) run the same workload.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hakmem_test {

// A queue of strings from one thread to another.
class StringMailbox {
 public:
  void put(std::string* s) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back(s);
    ready_.notify_one();
  }
  // Null once `close` was called and the queue is empty.
  std::string* take() {
    std::unique_lock<std::mutex> lock(mu_);
    ready_.wait(lock, [this] { return !items_.empty() || closed_; });
    if (items_.empty()) return nullptr;
    std::string* s = items_.front();
    items_.pop_front();
    return s;
  }
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    ready_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::string*> items_;
  bool closed_ = false;
};

inline std::string expected_string(unsigned thread, unsigned i) {
  return std::string(8 + (i * 37) % 400, char('a' + thread)) + std::to_string(i);
}

// Runs `threads` workers of `rounds` rounds each. Returns the number of
// strings that arrived with the wrong contents (0 when all is well).
inline unsigned run_string_workload(unsigned threads = 4, unsigned rounds = 20000) {
  std::vector<StringMailbox> boxes(threads);
  std::vector<unsigned> bad(threads, 0);
  std::vector<std::thread> senders, receivers;
  for (unsigned t = 0; t < threads; ++t) {
    senders.emplace_back([t, rounds, &boxes] {
      std::vector<std::string> kept;
      for (unsigned i = 0; i < rounds; ++i) {
        kept.push_back(expected_string(t, i));
        if (kept.size() > 64) kept.erase(kept.begin());
        if (i % 4 == 0) boxes[(t + 1) % boxes.size()].put(new std::string(expected_string(t, i)));
      }
    });
    receivers.emplace_back([t, threads, &boxes, &bad] {
      const unsigned from = (t + threads - 1) % threads;
      unsigned i = 0;
      while (std::string* s = boxes[t].take()) {
        if (*s != expected_string(from, i)) ++bad[t];
        delete s;  // freed by a thread other than the one that allocated it
        i += 4;
      }
    });
  }
  for (auto& th : senders) th.join();
  for (auto& box : boxes) box.close();
  for (auto& th : receivers) th.join();
  unsigned total = 0;
  for (unsigned b : bad) total += b;
  return total;
}

}  // namespace hakmem_test
