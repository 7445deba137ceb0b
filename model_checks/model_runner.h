// Runs Relacy test suites for the model-check binaries and reports what was
// explored.
//
//   expect_clean<Suite>(name, iterations)    the model must pass every
//                                            explored execution;
//   expect_detected<Suite>(name, iterations, {results...})
//                                            a negative control: Relacy must
//                                            report one of `results` within
//                                            the budget.
//
// Models run under Relacy's random scheduler with a fixed execution count
// (reproducible: Relacy seeds execution i with i) and/or its context-bound
// scheduler, which explores every execution with at most `context_bound`
// preemptions. Relacy's own report of
// a negative control is kept out of the log (it is expected); its first lines
// are echoed, clearly labelled, and the whole report is written to
// $TEST_UNDECLARED_OUTPUTS_DIR when Bazel provides it.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <string>

#include "model_checks/relacy_atomics.h"

namespace hakmem::model {

struct ModelOptions {
  static ModelOptions random(rl::iteration_t n) {
    ModelOptions o;
    o.iterations = n;
    return o;
  }
  static ModelOptions bounded(unsigned bound) {
    ModelOptions o;
    o.scheduler = rl::sched_bound;
    o.context_bound = bound;
    return o;
  }

  // Executions to explore with the random scheduler. With the context-bound
  // scheduler (systematic search) this is ignored: the search runs to the
  // end of the bounded space.
  rl::iteration_t iterations = 10000;
  rl::scheduler_type_e scheduler = rl::sched_random;
  unsigned context_bound = 1;
  // Relacy reports a livelock when one execution passes this many
  // scheduling points. Invariant checks also count, so it is generous.
  unsigned execution_depth_limit = 200000;
};

class ModelReport {
 public:
  void record(bool ok) { ok ? ++passed_ : ++failed_; }
  int passed() const { return passed_; }
  int failed() const { return failed_; }
  // Prints the closing line and returns the process exit status.
  int finish(const char* binary) const {
    std::printf("%s: %d passed, %d failed\n", binary, passed_, failed_);
    std::fflush(stdout);
    return failed_ == 0 ? 0 : 1;
  }

 private:
  int passed_ = 0;
  int failed_ = 0;
};

namespace detail {

// Relacy prints its failure report from inside the simulation, where the
// global operator new is Relacy's tracking allocator; a growing
// std::ostringstream would mix that allocator with the real one. The report
// is therefore captured in a fixed buffer that never allocates (a report
// longer than the buffer is truncated).
class CaptureBuffer : public std::streambuf {
 public:
  CaptureBuffer() { setp(storage(), storage() + kCapacity); }
  std::string text() const { return std::string(pbase(), pptr()); }

 protected:
  int_type overflow(int_type ch) override { return traits_type::not_eof(ch); }  // drop

 private:
  static constexpr std::size_t kCapacity = std::size_t(8) << 20;
  // One capture at a time: the models run sequentially.
  static char* storage() {
    static char buffer[kCapacity];
    return buffer;
  }
};

// Swallows Relacy's progress lines.
class NullBuffer : public std::streambuf {
 protected:
  int_type overflow(int_type ch) override { return traits_type::not_eof(ch); }
};

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Writes Relacy's report of one run to $TEST_UNDECLARED_OUTPUTS_DIR (Bazel
// zips it into test.outputs/outputs.zip), named after the run.
inline void save_report(const std::string& name, const ModelOptions& opt,
                        const std::string& text) {
  const char* dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  if (dir == nullptr || *dir == '\0') return;
  std::string file;
  for (char c : name + (opt.scheduler == rl::sched_bound ? " bounded" : "")) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (keep) {
      file += c;
    } else if (!file.empty() && file.back() != '_') {
      file += '_';
    }
  }
  std::ofstream out(std::string(dir) + "/" + file + ".relacy.txt");
  out << text;
}

// The lines of Relacy's failure report that say what and where: the result
// line, the execution number, and the first history line that records the
// failure (its location is the model's call into the template).
inline std::string summarize(const std::string& report) {
  std::istringstream in(report);
  std::string line, out;
  int line_no = 0;
  bool culprit_seen = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 2 || line_no == 3) {  // line 1 is the mangled suite name
      out += "    | " + line + "\n";
    } else if (!culprit_seen && line.rfind("[", 0) == 0 &&
               (line.find("DATA RACE") != std::string::npos ||
                line.find("ASSERT") != std::string::npos ||
                line.find("INVARIANT") != std::string::npos ||
                line.find("UNINITIALIZED") != std::string::npos ||
                line.find("LIVELOCK") != std::string::npos)) {
      out += "    | " + line + "\n";
      culprit_seen = true;
    }
  }
  return out;
}

inline std::string scheduler_name(const ModelOptions& opt) {
  if (opt.scheduler == rl::sched_bound) {
    return "context-bound scheduler, bound " + std::to_string(opt.context_bound) +
           ", exhaustive within the bound";
  }
  return rl::format(opt.scheduler);
}

inline rl::test_params make_params(const ModelOptions& opt, std::ostream* out, std::ostream* progress) {
  rl::test_params p;
  p.iteration_count = opt.iterations;
  p.search_type = opt.scheduler;
  p.context_bound = opt.context_bound;
  p.execution_depth_limit = opt.execution_depth_limit;
  p.output_stream = out;
  p.progress_stream = progress;
  return p;
}

}  // namespace detail

// Runs a model that must hold. Prints the number of executions explored.
template <class Suite>
bool expect_clean(ModelReport& report, const char* name, ModelOptions opt = {}) {
  detail::CaptureBuffer out_buf;
  detail::NullBuffer null_buf;
  std::ostream out(&out_buf), progress(&null_buf);
  rl::test_params p = detail::make_params(opt, &out, &progress);
  const auto t0 = std::chrono::steady_clock::now();
  const bool ok = rl::simulate<Suite>(p);
  const double secs = detail::seconds_since(t0);
  if (ok) {
    std::printf("[ MODEL OK ] %s: %llu executions explored (%s), no race, no assertion, "
                "%.2f s\n",
                name, static_cast<unsigned long long>(p.stop_iteration),
                detail::scheduler_name(opt).c_str(), secs);
  } else {
    std::printf("[ MODEL FAILED ] %s: Relacy reported %s at execution %llu (%s, %.2f s). "
                "Relacy's report:\n%s\n",
                name, rl::test_result_str(p.test_result),
                static_cast<unsigned long long>(p.stop_iteration),
                detail::scheduler_name(opt).c_str(), secs, out_buf.text().c_str());
  }
  detail::save_report(name, opt, out_buf.text());
  std::fflush(stdout);
  report.record(ok);
  return ok;
}

// Runs a deliberately broken variant: passes only if Relacy reports one of
// `expected` within the budget.
template <class Suite>
bool expect_detected(ModelReport& report, const char* name,
                     std::initializer_list<rl::test_result_e> expected, ModelOptions opt = {}) {
  detail::CaptureBuffer out_buf;
  detail::NullBuffer null_buf;
  std::ostream out(&out_buf), progress(&null_buf);
  rl::test_params p = detail::make_params(opt, &out, &progress);
  const auto t0 = std::chrono::steady_clock::now();
  const bool clean = rl::simulate<Suite>(p);
  const double secs = detail::seconds_since(t0);
  bool ok = false;
  if (clean) {
    std::printf("[ CONTROL FAILED ] %s: the broken variant passed %llu executions; the model "
                "cannot detect this bug\n",
                name, static_cast<unsigned long long>(p.stop_iteration));
  } else {
    for (rl::test_result_e e : expected) ok = ok || e == p.test_result;
    if (ok) {
      std::printf("[ CONTROL OK ] %s: broken variant detected as expected: Relacy reported %s "
                  "at execution %llu (%.2f s). Expected report (not an error):\n%s",
                  name, rl::test_result_str(p.test_result),
                  static_cast<unsigned long long>(p.stop_iteration), secs,
                  detail::summarize(out_buf.text()).c_str());
    } else {
      std::printf("[ CONTROL FAILED ] %s: Relacy reported %s, not the expected kind of bug. "
                  "Relacy's report:\n%s\n",
                  name, rl::test_result_str(p.test_result), out_buf.text().c_str());
    }
  }
  detail::save_report(name, opt, out_buf.text());
  std::fflush(stdout);
  report.record(ok);
  return ok;
}

// One model binary: its clean runs and its negative controls, in the order
// they are declared, sharing one random-scheduler budget; finish() prints the
// closing line and returns the exit status.
//
//   return ModelRun("x_model", 1000000)
//       .clean<Model>("x: scenario", 3)    // random budget, then bound 3
//       .control<Broken>("x NEGATIVE CONTROL: ...", {rl::test_result_data_race})
//       .finish();
class ModelRun {
 public:
  ModelRun(const char* binary, rl::iteration_t executions)
      : binary_(binary), opt_(ModelOptions::random(executions)) {}

  // The model under the random scheduler.
  template <class Suite>
  ModelRun& clean(const char* name) {
    expect_clean<Suite>(report_, name, opt_);
    return *this;
  }
  // The model under the random scheduler, then under the context-bound one.
  template <class Suite>
  ModelRun& clean(const char* name, unsigned context_bound) {
    clean<Suite>(name);
    return bounded<Suite>(name, context_bound);
  }
  // The model under the context-bound scheduler only.
  template <class Suite>
  ModelRun& bounded(const char* name, unsigned context_bound) {
    expect_clean<Suite>(report_, name, ModelOptions::bounded(context_bound));
    return *this;
  }
  // A negative control under the random scheduler.
  template <class Suite>
  ModelRun& control(const char* name, std::initializer_list<rl::test_result_e> expected) {
    return control<Suite>(name, expected, opt_);
  }
  template <class Suite>
  ModelRun& control(const char* name, std::initializer_list<rl::test_result_e> expected,
                    const ModelOptions& opt) {
    expect_detected<Suite>(report_, name, expected, opt);
    return *this;
  }

  int finish() const { return report_.finish(binary_); }

 private:
  const char* binary_;
  ModelOptions opt_;
  ModelReport report_;
};

}  // namespace hakmem::model
