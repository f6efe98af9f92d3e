// Rank 0 of an mpi_pool: a queue of encoded tasks, and one driver thread that makes every MPI
// call after the start. It sends each node batches of queued tasks while the node has fewer
// than twice its workers outstanding (so submits made while a node is full travel together in
// its next message), takes batches of results back, and completes their futures.

#include "mpi/comm.hpp"
#include "mpi/supervisor.hpp"
#include "mpi/wire.hpp"

#include <mproc/detail/thread_safety.hpp>
#include <mproc/errors.hpp>
#include <mproc/mpi_pool.hpp>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <stdexcept>
#include <thread>
#include <unordered_map>

namespace mproc::detail {

namespace {

// Tasks of one message, in bytes, unless a single task is larger.
constexpr std::size_t batch_bytes = std::size_t{4} << 20;
// How long the driver sleeps between looks for results, at most, while tasks are out.
constexpr auto longest_nap = std::chrono::microseconds(500);

struct queued {
  std::uint64_t key = 0;
  std::uint32_t count = 0;
  std::vector<char> payload;
  std::shared_ptr<task_state> state;
};

struct node_state {
  std::size_t workers = 0;
  std::size_t outstanding = 0;  // tasks sent and not answered
  bool stop_sent = false;
  bool stopped = false;
};

// Joins MPI: initialises it unless the program has. Returns whether it did.
bool join_mpi(int& argc, char**& argv) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized != 0) {
    throw start_error(
        "cannot start an mpi_pool: MPI is already finalised in this process (an earlier "
        "mpi_pool finalised it); a program has one mpi_pool per run");
  }
  int initialized = 0;
  MPI_Initialized(&initialized);
  int provided = 0;
  if (initialized == 0) {
    mpi_comm::check(MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided),
                    "MPI_Init_thread");
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    throw start_error(
        "cannot start an mpi_pool: this MPI library gives only a single-threaded level; mproc "
        "calls MPI from a thread of its own and needs MPI_THREAD_SERIALIZED. Initialise MPI "
        "with MPI_Init_thread(..., MPI_THREAD_SERIALIZED, ...) or let mpi_pool do it");
  }
  return initialized == 0;
}

}  // namespace

class mpi_engine {
 public:
  mpi_engine(int& argc, char**& argv, const mpi_options& options);
  ~mpi_engine() { shutdown(true, false); }
  mpi_engine(const mpi_engine&) = delete;
  mpi_engine& operator=(const mpi_engine&) = delete;

  std::shared_ptr<task_state> enqueue(std::uint64_t key, std::string_view name, std::uint32_t count,
                                      std::vector<char> payload);
  void shutdown(bool wait, bool cancel_pending);
  std::size_t workers() const noexcept { return workers_; }
  std::size_t nodes() const noexcept { return nodes_.size(); }
  std::size_t workers_on(std::size_t node) const;

 private:
  void start();
  void leave_mpi() noexcept;
  void drive();
  bool receive();
  bool send_batches();
  void take_results(int node, const mpi_comm::incoming& in);
  void send_stops(bool cancel);
  void fail_everything(const std::exception_ptr& why);

  MPI_Comm comm_ = MPI_COMM_NULL;
  bool finalize_ = false;          // this pool initialised MPI, so it finalises it
  std::vector<node_state> nodes_;  // index: rank - 1; the driver's after the start
  std::size_t workers_ = 0;
  std::unordered_map<std::uint64_t, std::shared_ptr<task_state>> sent_;  // driver only
  mpi_comm::outbox outbox_;                                              // driver only
  std::uint64_t next_id_ = 0;                                            // driver only
  std::thread driver_;

  detail::mutex mutex_;
  std::condition_variable wake_;  // notified (with mutex_) on a new task or a shutdown
  std::deque<queued> queue_ MPROC_GUARDED_BY(mutex_);
  bool closed_ MPROC_GUARDED_BY(mutex_) = false;
  bool cancel_ MPROC_GUARDED_BY(mutex_) = false;
  std::exception_ptr broken_ MPROC_GUARDED_BY(mutex_);  // MPI failed: why

  detail::mutex join_mutex_;  // serialises the joining part of shutdown
  bool joined_ MPROC_GUARDED_BY(join_mutex_) = false;
};

mpi_engine::mpi_engine(int& argc, char**& argv, const mpi_options& options) {
  finalize_ = join_mpi(argc, argv);
  try {
    mpi_comm::check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    mpi_comm::check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    int rank = 0;
    mpi_comm::check(MPI_Comm_rank(comm_, &rank), "MPI_Comm_rank");
    mpi_wire::identity id = mpi_wire::own_identity();
    mpi_comm::check(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, comm_), "MPI_Bcast");
    if (rank != 0) mpi_supervisor::serve(comm_, id, options, finalize_);
    start();
  } catch (...) {
    leave_mpi();
    throw;
  }
  driver_ = std::thread([this] { drive(); });
}

// Gathers every node's hello and tells them whether the pool starts.
void mpi_engine::start() {
  int size = 0;
  mpi_comm::check(MPI_Comm_size(comm_, &size), "MPI_Comm_size");
  std::vector<mpi_wire::node_hello> hellos(static_cast<std::size_t>(size));
  // Rank 0 sends nothing of its own (MPI_IN_PLACE: its slot, hellos[0], stays empty).
  mpi_comm::check(MPI_Gather(MPI_IN_PLACE, 0, MPI_BYTE, hellos.data(), sizeof(mpi_wire::node_hello),
                             MPI_BYTE, 0, comm_),
                  "MPI_Gather");
  std::string problems;
  for (int r = 1; r < size; ++r) {
    const mpi_wire::node_hello& h = hellos[static_cast<std::size_t>(r)];
    if (h.problem[0] == '\0') continue;
    problems += (problems.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) +
                " (pid " + std::to_string(h.pid) + " on " + h.host + "): " + h.problem;
  }
  std::uint8_t go = problems.empty() && size > 1 ? 1 : 0;
  mpi_comm::check(MPI_Bcast(&go, 1, MPI_BYTE, 0, comm_), "MPI_Bcast");
  if (size == 1) {
    throw start_error(
        "cannot start an mpi_pool: this job has only rank 0, and the tasks run on the other "
        "ranks. Start the program with mpiexec -n N (N >= 2) or srun -n N");
  }
  if (!problems.empty()) throw start_error("cannot start an mpi_pool: " + problems);
  for (int r = 1; r < size; ++r) {
    node_state n;
    n.workers = hellos[static_cast<std::size_t>(r)].workers;
    workers_ += n.workers;
    nodes_.push_back(n);
  }
}

void mpi_engine::leave_mpi() noexcept {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  if (finalize_) MPI_Finalize();
  finalize_ = false;
}

std::size_t mpi_engine::workers_on(std::size_t node) const {
  if (node >= nodes_.size()) {
    throw std::out_of_range("mpi_pool::workers_on(" + std::to_string(node) + "): the pool has " +
                            std::to_string(nodes_.size()) + " nodes");
  }
  return nodes_[node].workers;
}

std::shared_ptr<task_state> mpi_engine::enqueue(std::uint64_t key, std::string_view name,
                                                std::uint32_t count, std::vector<char> payload) {
  if (payload.size() > mpi_comm::max_message / 2) {
    throw std::length_error("cannot submit '" + std::string(name) + "': its arguments take " +
                            std::to_string(payload.size()) +
                            " bytes, more than one MPI message carries; send large data to "
                            "each node once (a file, or the initializer) and pass a reference");
  }
  auto state = std::make_shared<task_state>(count, name);
  detail::lock_guard lock(mutex_);
  if (broken_) std::rethrow_exception(broken_);
  if (closed_) throw pool_closed();
  queue_.push_back(queued{key, count, std::move(payload), state});
  wake_.notify_one();
  return state;
}

void mpi_engine::shutdown(bool wait, bool cancel_pending) {
  std::deque<queued> cancelled;
  {
    detail::lock_guard lock(mutex_);
    closed_ = true;
    if (cancel_pending) {
      cancel_ = true;
      cancelled.swap(queue_);
    }
    wake_.notify_one();
  }
  for (queued& q : cancelled) q.state->cancel();
  if (!wait) return;
  detail::lock_guard join(join_mutex_);
  if (joined_) return;
  joined_ = true;
  if (driver_.joinable()) driver_.join();
  leave_mpi();
}

void mpi_engine::drive() {
  mpi_comm::backoff idle(longest_nap);
  try {
    for (;;) {
      bool busy = outbox_.progress();
      busy = receive() || busy;
      busy = send_batches() || busy;
      bool closed = false;
      bool cancel = false;
      bool drained = false;  // nothing queued
      {
        detail::lock_guard lock(mutex_);
        closed = closed_;
        cancel = cancel_;
        drained = queue_.empty();
      }
      if (closed) {
        if (cancel || (drained && sent_.empty())) send_stops(cancel);
        if (std::all_of(nodes_.begin(), nodes_.end(),
                        [](const node_state& n) { return n.stopped; }))
          break;
      }
      if (busy) {
        idle.active();
        continue;
      }
      const auto nap = idle.next();
      detail::unique_lock lock(mutex_);
      if (sent_.empty() && queue_.empty() && !closed_) {
        // Nothing is out, so nothing can arrive: sleep until a task or a shutdown comes.
        while (queue_.empty() && !closed_) wake_.wait(lock.native());
        idle.active();
      } else if (nap.count() == 0) {
        lock.unlock();
        std::this_thread::yield();
      } else {
        // Tasks are out (or nodes are full, or stopping): answers are only seen by looking.
        wake_.wait_for(lock.native(), nap);
      }
    }
    outbox_.drain();
  } catch (...) {
    fail_everything(std::current_exception());
  }
}

bool mpi_engine::receive() {
  bool any = false;
  while (auto in = mpi_comm::poll(comm_, MPI_ANY_SOURCE)) {
    any = true;
    const int node = in->source - 1;
    if (in->tag == mpi_wire::results) {
      take_results(node, *in);
    } else if (in->tag == mpi_wire::stopped) {
      nodes_[static_cast<std::size_t>(node)].stopped = true;
    }
  }
  return any;
}

void mpi_engine::take_results(int node, const mpi_comm::incoming& in) {
  node_state& n = nodes_[static_cast<std::size_t>(node)];
  mpi_wire::reader r(in.bytes.data(), in.bytes.size());
  while (!r.done()) {
    const auto id = r.get<std::uint64_t>();
    const auto ran = r.get<std::int64_t>();
    const bool failed = r.get<std::uint8_t>() != 0;
    const auto it = sent_.find(id);
    if (it == sent_.end()) {
      throw serialization_error("rank " + std::to_string(node + 1) +
                                " answered a task that was never sent to it");
    }
    const std::shared_ptr<task_state> state = std::move(it->second);
    sent_.erase(it);
    --n.outstanding;
    state->set_ran(std::chrono::nanoseconds(ran));
    if (failed) {
      state->set_error(mpi_wire::get_error(r, std::string(state->name())));
    } else {
      const std::string_view bytes = r.get_bytes();
      state->set_value(std::vector<char>(bytes.begin(), bytes.end()));
    }
  }
}

// Sends each node with room a batch of queued tasks; true if anything was sent.
bool mpi_engine::send_batches() {
  bool any = false;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    node_state& n = nodes_[i];
    const std::size_t room = 2 * std::max<std::size_t>(n.workers, 1);
    if (n.stop_sent || n.outstanding >= room) continue;
    std::vector<queued> batch;
    {
      detail::lock_guard lock(mutex_);
      std::size_t bytes = 0;
      while (!queue_.empty() && n.outstanding + batch.size() < room &&
             (batch.empty() || bytes + queue_.front().payload.size() <= batch_bytes)) {
        queued q = std::move(queue_.front());
        queue_.pop_front();
        if (!q.state->try_start()) continue;  // cancelled while queued
        bytes += q.payload.size();
        batch.push_back(std::move(q));
      }
    }
    if (batch.empty()) continue;
    std::vector<char> message;
    mpi_wire::writer w(message);
    for (queued& q : batch) {
      const std::uint64_t id = ++next_id_;
      w.put(id);
      w.put(q.key);
      w.put(q.count);
      w.put_bytes(std::string_view(q.payload.data(), q.payload.size()));
      sent_.emplace(id, std::move(q.state));
    }
    n.outstanding += batch.size();
    outbox_.send(comm_, static_cast<int>(i) + 1, mpi_wire::tasks, std::move(message));
    any = true;
  }
  return any;
}

void mpi_engine::send_stops(bool cancel) {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].stop_sent) continue;
    nodes_[i].stop_sent = true;
    outbox_.send(comm_, static_cast<int>(i) + 1, mpi_wire::stop,
                 std::vector<char>{static_cast<char>(cancel ? 1 : 0)});
  }
}

// MPI failed under the driver: nothing more can be sent or received.
void mpi_engine::fail_everything(const std::exception_ptr& why) {
  std::deque<queued> queued_tasks;
  {
    detail::lock_guard lock(mutex_);
    broken_ = why;
    queued_tasks.swap(queue_);
  }
  for (auto& [id, state] : sent_) state->set_error(why);
  sent_.clear();
  for (queued& q : queued_tasks) {
    if (q.state->try_start()) q.state->set_error(why);
  }
}

}  // namespace mproc::detail

namespace mproc {

mpi_pool::mpi_pool(int& argc, char**& argv, const mpi_options& options)
    : engine_(std::make_unique<detail::mpi_engine>(argc, argv, options)) {}

mpi_pool::~mpi_pool() {
  const bool unwinding = std::uncaught_exceptions() > uncaught_at_start_;
  engine_->shutdown(true, unwinding);
}

void mpi_pool::shutdown(bool wait, bool cancel_pending) { engine_->shutdown(wait, cancel_pending); }

std::size_t mpi_pool::workers() const noexcept { return engine_->workers(); }

std::size_t mpi_pool::nodes() const noexcept { return engine_->nodes(); }

std::size_t mpi_pool::workers_on(std::size_t node) const { return engine_->workers_on(node); }

// Results come as messages: `block` is for results read from a worker's memory.
std::shared_ptr<detail::task_state> mpi_pool::enqueue(std::uint64_t key, std::string_view name,
                                                      std::uint32_t count,
                                                      std::vector<char> payload,
                                                      const detail::block_result* /*block*/) {
  return engine_->enqueue(key, name, count, std::move(payload));
}

}  // namespace mproc
