#include "tests/support/test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include <gtest/gtest.h>

extern char** environ;

namespace hakmem_test {
namespace {

std::map<std::string, ChildMain>& children() {
  static auto* m = new std::map<std::string, ChildMain>;
  return *m;
}

constexpr char kChildFlag[] = "--hakmem_child=";

double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

}  // namespace

ChildRegistrar::ChildRegistrar(const char* name, ChildMain fn) { children()[name] = fn; }

std::string ChildResult::describe() const {
  std::string s;
  if (timed_out) s += "timed out; ";
  if (exited) s += "exit status " + std::to_string(exit_code) + "; ";
  if (signaled) s += "killed by signal " + std::to_string(term_signal) + "; ";
  s += "stdout:\n" + out + "\nstderr:\n" + err;
  return s;
}

ChildResult run_program(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        double timeout_seconds) {
  ChildResult result;
  // Everything the child needs is built before fork(): after it, the child
  // of a multithreaded parent may only call async-signal-safe functions.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (strncmp(*e, "HAKMEM_", 7) == 0) continue;
    env_strings.emplace_back(*e);
  }
  for (const std::string& e : env) env_strings.push_back(e);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  std::vector<char*> argvp;
  for (std::string& a : argv_copy) argvp.push_back(a.data());
  argvp.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    result.err = "pipe failed";
    return result;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    result.err = "fork failed";
    return result;
  }
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    execve(argvp[0], argvp.data(), envp.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  const double deadline = now_seconds() + timeout_seconds;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    const double left = deadline - now_seconds();
    if (left <= 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    const int r = poll(fds, 2, int(left * 1000) + 1);
    if (r < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, size_t(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  for (;;) {
    const pid_t w = waitpid(pid, &status, result.timed_out ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return result;
    if (now_seconds() > deadline + 1) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    if (w == 0) usleep(1000);
  }
  if (WIFEXITED(status)) {
    result.exited = true;
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signaled = true;
    result.term_signal = WTERMSIG(status);
  }
  return result;
}

ChildResult run_child(const std::string& name, const std::vector<std::string>& env,
                      double timeout_seconds) {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    ChildResult r;
    r.err = "readlink(/proc/self/exe) failed";
    return r;
  }
  self[n] = 0;
  return run_program({self, std::string(kChildFlag) + name}, env, timeout_seconds);
}

size_t resident_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int got = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return got == 2 ? size_t(resident) * size_t(sysconf(_SC_PAGESIZE)) : 0;
}

size_t count_occurrences(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

uint64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

void sleep_ms(uint64_t ms) {
  struct timespec ts = {time_t(ms / 1000), long(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

}  // namespace hakmem_test

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (strncmp(argv[i], hakmem_test::kChildFlag, sizeof(hakmem_test::kChildFlag) - 1) == 0) {
      const std::string name = argv[i] + sizeof(hakmem_test::kChildFlag) - 1;
      auto it = hakmem_test::children().find(name);
      if (it == hakmem_test::children().end()) {
        fprintf(stderr, "unknown child scenario %s\n", name.c_str());
        return 125;
      }
      return it->second();
    }
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
