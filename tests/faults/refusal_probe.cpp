// A small pool program that the refusal tests run with the operating system saying no: it sets
// up the refusal itself, starts a pool, runs a few tasks and prints one line, either
// "ok <sum>" or "<error type>: <what()>". It exits 0 either way, and 3 if something else threw.
//
//   refusal_probe <method> <workers> <tasks> <refusal> [value]
//
// Refusals (each is real: the kernel refuses, nothing is simulated in mproc):
//   none               nothing refused
//   pidfd              seccomp makes pidfd_open fail with ENOSYS, as valgrind or a kernel
//                      before 5.3 does (inherited by every process the pool starts)
//   nproc <extra>      a fresh user id, with RLIMIT_NPROC at the tasks it has now plus <extra>:
//                      the (<extra> + 1)-th thread or process of the pool is refused with EAGAIN
//   nofile <extra>     every descriptor above stderr closed, RLIMIT_NOFILE at 3 + <extra>
//   small-shm <MiB>    a private mount namespace where /dev/shm is a tmpfs of <MiB> MiB (root
//                      only)
//   no-memfd           seccomp makes memfd_create fail with ENOSYS, as an old kernel or a
//                      sandbox does
//   no-cma             seccomp makes process_vm_readv and process_vm_writev fail with ENOSYS,
//                      as a container's default profile without CAP_SYS_PTRACE does
// Refusals combine with '+' ("small-shm+no-memfd"); [value] goes to the one that takes it.
//   large              not a refusal: the tasks echo byte vectors of 1 byte, around the size
//                      where direct copies begin (256 KiB), 4 MiB and 200 MiB, and it prints
//                      "ok large <echoes intact>" and " crashed@<size>" for each that failed
//                      with worker_crashed (a preloaded kill_on_copy kills a worker mid-copy)
//   stop-zygote        the fork zygote is stopped (SIGSTOP) after the pool started
//   replace-self <exe> not a refusal: the probe's own file is replaced by a copy of <exe> (as a
//                      rebuild does) after its first tasks, then deleted, with tasks after each
//                      step and a second pool at the end: it prints the sum of all four rounds
//   hold-array         not a refusal: creates a shared_array of 16 sevens, prints "ready", waits
//                      for a line on stdin, then sums the array in a task of a new pool (each
//                      task's argument is its array): "ok 112" if the array survived meanwhile
// Each task returns `planted` (42, set before the pool starts: a forked worker sees it) plus
// its argument; with max_tasks_per_worker = 1 every task runs in a new worker.
#include <mproc/mproc.hpp>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

int planted = 0;

int planted_plus(int x) { return planted + x; }

int sum_of(mproc::shared_array<int> a) {
  int sum = 0;
  for (const int v : a) sum += v;
  return sum;
}

[[noreturn]] void fail(const char* what) {
  std::printf("probe setup failed: %s: %s\n", what, std::strerror(errno));
  std::exit(3);
}

// Makes the system call `nr` fail with ENOSYS in this process and every process it starts.
void refuse_system_call(unsigned nr) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("PR_SET_NO_NEW_PRIVS");
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) fail("PR_SET_SECCOMP");
}

std::size_t tasks_of_this_process() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& t : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// Moves this process to a user id nobody else has and caps that user's threads and processes
// (RLIMIT_NPROC counts both) at what it has now plus `extra`. As root the limit does not apply,
// hence the new user.
void limit_tasks(long extra) {
  const auto uid = static_cast<uid_t>(61000 + ::getpid() % 4000);
  if (::setresgid(uid, uid, uid) != 0) fail("setresgid");
  if (::setresuid(uid, uid, uid) != 0) fail("setresuid");
  const auto cap = static_cast<rlim_t>(tasks_of_this_process()) + static_cast<rlim_t>(extra);
  const rlimit limit{cap, cap};
  if (::setrlimit(RLIMIT_NPROC, &limit) != 0) fail("setrlimit(RLIMIT_NPROC)");
}

// Leaves this process stdin, stdout and stderr, and room for `extra` more descriptors.
void limit_descriptors(long extra) {
  if (::close_range(3, ~0U, 0) != 0) fail("close_range");
  const auto cap = static_cast<rlim_t>(3 + extra);
  const rlimit limit{cap, cap};
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) fail("setrlimit(RLIMIT_NOFILE)");
}

// Gives this process (and the processes it starts) a /dev/shm of `mib` MiB (1 MiB is less than
// one worker's channel needs; Docker's default is 64 MiB).
void shrink_dev_shm(long mib) {
  const std::string options = "size=" + std::to_string(mib) + "m,mode=1777";
  if (::unshare(CLONE_NEWNS) != 0) fail("unshare(CLONE_NEWNS)");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail("mount private");
  if (::mount("tmpfs", "/dev/shm", "tmpfs", 0, options.c_str()) != 0) fail("mount tmpfs");
}

// Whether `refusal` ("a+b+c") names `part`.
bool refuses(const std::string& refusal, const std::string& part) {
  return ("+" + refusal + "+").find("+" + part + "+") != std::string::npos;
}

// Stops the zygote: the pool's only child that is not a worker.
void stop_zygote(const std::vector<int>& workers) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::FILE* f = std::fopen((entry.path() / "stat").c_str(), "r");
    if (f == nullptr) continue;
    int pid = 0;
    int ppid = 0;
    char state = 0;
    const int got = std::fscanf(f, "%d %*s %c %d", &pid, &state, &ppid);
    std::fclose(f);
    if (got != 3 || ppid != ::getpid()) continue;
    bool is_worker = false;
    for (const int w : workers) is_worker = is_worker || w == pid;
    if (!is_worker) ::kill(pid, SIGSTOP);
  }
}

int worker_pid(int) { return static_cast<int>(::getpid()); }

std::vector<char> echo(std::vector<char> v) { return v; }

std::vector<char> pattern(std::size_t n) {
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<char>(i * 131 + n);
  return v;
}

// The "large" workload: prints how many echoes came back intact, and which crashed.
void run_large(mproc::process_pool& pool) {
  constexpr std::size_t threshold = std::size_t{256} << 10;
  int intact = 0;
  std::string crashed;
  for (const std::size_t n : {std::size_t{1}, threshold - 1, threshold, threshold + 1,
                              std::size_t{4} << 20, std::size_t{200} << 20}) {
    const std::vector<char> v = pattern(n);
    try {
      if (pool.submit<echo>(v).get() == v) ++intact;
    } catch (const mproc::worker_crashed&) {
      crashed += " crashed@" + std::to_string(n);
    }
  }
  std::printf("ok large %d%s\n", intact, crashed.c_str());
}

// Runs `n` tasks (each in a new worker) and returns the sum of their results.
long run_tasks(mproc::process_pool& pool, long n) {
  std::vector<mproc::future<int>> results;
  for (long i = 0; i < n; ++i) results.push_back(pool.submit<planted_plus>(static_cast<int>(i)));
  long sum = 0;
  for (auto& r : results) sum += r.get();
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  if (argc < 5) {
    std::printf("usage: refusal_probe <method> <workers> <tasks> <refusal> [value]\n");
    return 3;
  }
  const std::string refusal = argv[4];
  const long value = argc > 5 ? std::atol(argv[5]) : 0;
  const long tasks = std::atol(argv[3]);
  planted = 42;
  try {
    if (refusal == "hold-array") {
      mproc::shared_array<int> a(16);
      for (int& v : a) v = 7;
      std::printf("ready\n");
      std::fflush(stdout);
      std::string line;
      std::getline(std::cin, line);
      mproc::pool_options options;
      options.start = mproc::parse_start_method(argv[1]);
      options.workers = 1;
      mproc::process_pool pool(options);
      std::printf("ok %d\n", pool.submit<sum_of>(a).get());
      return 0;
    }
    if (refuses(refusal, "pidfd")) refuse_system_call(SYS_pidfd_open);
    if (refuses(refusal, "no-memfd")) refuse_system_call(SYS_memfd_create);
    if (refuses(refusal, "no-cma")) {
      refuse_system_call(SYS_process_vm_readv);
      refuse_system_call(SYS_process_vm_writev);
    }
    if (refuses(refusal, "nproc")) limit_tasks(value);
    if (refuses(refusal, "nofile")) limit_descriptors(value);
    if (refuses(refusal, "small-shm")) shrink_dev_shm(value);
    mproc::pool_options options;
    options.start = mproc::parse_start_method(argv[1]);
    options.workers = static_cast<std::size_t>(std::atol(argv[2]));
    options.max_tasks_per_worker = 1;
    mproc::process_pool pool(options);
    if (refusal == "stop-zygote") {
      std::vector<int> workers;
      // max_tasks_per_worker = 1: each of these runs in one of the first workers.
      for (std::size_t i = 0; i < options.workers; ++i) {
        workers.push_back(pool.submit<worker_pid>(0).get());
      }
      stop_zygote(workers);
    }
    if (refuses(refusal, "large")) {
      run_large(pool);
      return 0;
    }
    long sum = run_tasks(pool, tasks);
    if (refusal == "replace-self") {
      const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
      std::filesystem::copy_file(argv[5], self.string() + ".new");
      std::filesystem::rename(self.string() + ".new", self);
      sum += run_tasks(pool, tasks);
      std::filesystem::remove(self);
      sum += run_tasks(pool, tasks);
      mproc::process_pool again(options);
      sum += run_tasks(again, tasks);
    }
    std::printf("ok %ld\n", sum);
  } catch (const mproc::start_error& e) {
    std::printf("start_error: %s\n", e.what());
  } catch (const mproc::worker_crashed& e) {
    std::printf("worker_crashed: %s\n", e.what());
  } catch (const mproc::error& e) {
    std::printf("mproc::error: %s\n", e.what());
  } catch (const std::exception& e) {
    std::printf("other exception: %s\n", e.what());
    return 3;
  }
  return 0;
}
