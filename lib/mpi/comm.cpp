#include "mpi/comm.hpp"

#include <mproc/errors.hpp>

#include <algorithm>
#include <string>

namespace mproc::mpi_comm {

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw error(std::string("mpi_pool: ") + call +
              " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

std::optional<incoming> poll(MPI_Comm comm, int source) {
  int arrived = 0;
  MPI_Message message = MPI_MESSAGE_NULL;
  MPI_Status status;
  check(MPI_Improbe(source, MPI_ANY_TAG, comm, &arrived, &message, &status), "MPI_Improbe");
  if (arrived == 0) return std::nullopt;
  int count = 0;
  check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
  incoming in;
  in.source = status.MPI_SOURCE;
  in.tag = status.MPI_TAG;
  in.bytes.resize(static_cast<std::size_t>(count));
  check(MPI_Mrecv(in.bytes.data(), count, MPI_BYTE, &message, MPI_STATUS_IGNORE), "MPI_Mrecv");
  return in;
}

void backoff::active() noexcept {
  last_ = std::chrono::steady_clock::now();
  nap_ = shortest;
}

std::chrono::microseconds backoff::next() noexcept {
  if (std::chrono::steady_clock::now() - last_ < linger) return std::chrono::microseconds(0);
  const auto nap = nap_;
  nap_ = std::min(nap_ * 2, longest_);
  return nap;
}

outbox::~outbox() {
  // Only after MPI failed can sends be left here; their requests are MPI's to forget.
  for (sending& s : sending_) {
    if (s.request != MPI_REQUEST_NULL) MPI_Request_free(&s.request);
  }
}

void outbox::send(MPI_Comm comm, int dest, int tag, std::vector<char> bytes) {
  sending& s = sending_.emplace_back();
  s.bytes = std::move(bytes);
  check(MPI_Isend(s.bytes.data(), static_cast<int>(s.bytes.size()), MPI_BYTE, dest, tag, comm,
                  &s.request),
        "MPI_Isend");
}

bool outbox::progress() {
  bool any = false;
  for (auto it = sending_.begin(); it != sending_.end();) {
    int done = 0;
    check(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done != 0) {
      it = sending_.erase(it);
      any = true;
    } else {
      ++it;
    }
  }
  return any;
}

void outbox::drain() {
  for (sending& s : sending_) check(MPI_Wait(&s.request, MPI_STATUS_IGNORE), "MPI_Wait");
  sending_.clear();
}

}  // namespace mproc::mpi_comm
