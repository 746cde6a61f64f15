// io_uring — worker threads that each drive their own io_uring, blocked in
// io_uring_submit_and_wait between completions, and still answer cross-calls
// at once: delivery_mode::fd (xcall/options.hpp) and xcall::loop_wait
// (xcall/cpu.hpp), as examples/epoll does with epoll_wait.
//
// Each worker attaches CPU i with delivery_mode::fd, keeps a POLL_ADD
// (multishot) on the attachment's doorbell_fd() (an eventfd) in its ring,
// next to its own I/O (an accept, and a recv or a send per connection), and
// wraps the ring's wait in a loop_wait:
//
//   {
//     xcall::loop_wait wait;  // "about to block": a call queued now writes the eventfd
//     if (wait.may_block()) io_uring_submit_and_wait(&ring, 1);
//     else io_uring_submit(&ring);  // calls already queued: do not wait
//   }  // "back": reads the eventfd if it was written, runs the queued calls
//
// Poll the doorbell, never read it. The loop_wait's end reads the eventfd
// itself: a ring that read it (IORING_OP_READ) would consume the count the
// end is owed, and the end would wait for a write that already happened. A
// poll only reports readiness; its completion needs no handling beyond
// re-arming it when the kernel ends it.
//
// Where the kernel or the container does not allow io_uring, the program says
// why and exits 77, which CTest reports as a skip.
//
// The rest of the program (the echo protocol, the clients, the control
// thread that calls the workers and checks every call) is shared with
// examples/epoll: ../common/echo_harness.hpp.
#include <liburing.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/echo_harness.hpp"
#include "xcall/xcall.hpp"

namespace {

using echo_harness::worker_state;

constexpr int kSkip = 77;  // CTest's SKIP_RETURN_CODE for example.io_uring
constexpr unsigned kRingEntries = 256;

// What a completion is for: user_data = connection index << 2 | op.
enum op : std::uint64_t { kDoorbell = 0, kAccept = 1, kRecv = 2, kSend = 3 };
std::uint64_t tag(op o, std::size_t index = 0) {
  return static_cast<std::uint64_t>(index) << 2 | o;
}

// One client connection: at most one recv or send in flight, into these
// buffers (so they stay put: connections are held by unique_ptr).
struct connection {
  int fd = -1;  // -1: a free slot
  echo_harness::request req;
  std::size_t have = 0;  // bytes of req received
  echo_harness::reply rep;
  std::size_t sent = 0;  // bytes of rep sent
};

class worker_loop {
 public:
  worker_loop(worker_state& w, io_uring& ring, int doorbell, int listener)
      : w_(w), ring_(ring), doorbell_(doorbell), listener_(listener) {}

  void run() {
    arm_doorbell();
    arm_accept();
    while (!w_.stop) {
      int r;
      {
        xcall::loop_wait wait;
        if (wait.may_block()) {
          ++w_.blocked_waits;
          r = io_uring_submit_and_wait(&ring_, 1);
        } else {
          ++w_.zero_waits;
          r = io_uring_submit(&ring_);
        }
      }  // calls sent to this CPU ran here, on this thread; w.stop may be set now
      if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
        ++w_.errors;
        break;
      }
      io_uring_cqe* cqe;
      unsigned head;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        complete(*cqe);
      }
      io_uring_cq_advance(&ring_, seen);
    }
  }
  void close_connections() {
    for (const auto& c : connections_) {
      if (c->fd >= 0) close(c->fd);
    }
  }

 private:
  void complete(const io_uring_cqe& cqe) {
    const auto o = static_cast<op>(cqe.user_data & 3);
    const std::size_t index = cqe.user_data >> 2;
    switch (o) {
      case kDoorbell:
        // Nothing to do: the loop_wait's end has read the eventfd and run
        // the calls. Re-arm when the kernel ended the poll.
        if (cqe.res < 0) {
          if (multishot_ && cqe.res == -EINVAL) {
            multishot_ = false;  // before Linux 5.13: one-shot polls, re-armed
          } else {
            ++w_.errors;
            return;
          }
        }
        if ((cqe.flags & IORING_CQE_F_MORE) == 0) arm_doorbell();
        return;
      case kAccept:
        if (cqe.res < 0) {
          ++w_.errors;
          return;
        }
        arm_recv(add_connection(cqe.res));
        arm_accept();
        return;
      case kRecv: {
        connection& c = *connections_[index];
        if (cqe.res <= 0) {  // 0: the client closed
          if (cqe.res < 0) ++w_.errors;
          drop(c);
          return;
        }
        c.have += static_cast<std::size_t>(cqe.res);
        if (c.have < sizeof c.req) return arm_recv(index);
        c.have = 0;
        c.rep = echo_harness::make_reply(w_, c.req);
        c.sent = 0;
        return arm_send(index);
      }
      case kSend: {
        connection& c = *connections_[index];
        if (cqe.res <= 0) {
          ++w_.errors;
          drop(c);
          return;
        }
        c.sent += static_cast<std::size_t>(cqe.res);
        if (c.sent < sizeof c.rep) return arm_send(index);  // the rest
        echo_harness::echo_sent(w_);
        return arm_recv(index);
      }
    }
  }

  // The next free SQE; a full submission queue is submitted first.
  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (s == nullptr && io_uring_submit(&ring_) >= 0) s = io_uring_get_sqe(&ring_);
    if (s == nullptr) ++w_.errors;
    return s;
  }
  void arm_doorbell() {
    if (io_uring_sqe* s = sqe()) {
      if (multishot_) {
        io_uring_prep_poll_multishot(s, doorbell_, POLLIN);
      } else {
        io_uring_prep_poll_add(s, doorbell_, POLLIN);
      }
      io_uring_sqe_set_data64(s, tag(kDoorbell));
    }
  }
  void arm_accept() {
    if (io_uring_sqe* s = sqe()) {
      io_uring_prep_accept(s, listener_, nullptr, nullptr, SOCK_CLOEXEC);
      io_uring_sqe_set_data64(s, tag(kAccept));
    }
  }
  void arm_recv(std::size_t i) {
    connection& c = *connections_[i];
    if (io_uring_sqe* s = sqe()) {
      io_uring_prep_recv(s, c.fd, reinterpret_cast<char*>(&c.req) + c.have, sizeof c.req - c.have,
                         0);
      io_uring_sqe_set_data64(s, tag(kRecv, i));
    }
  }
  void arm_send(std::size_t i) {
    connection& c = *connections_[i];
    if (io_uring_sqe* s = sqe()) {
      io_uring_prep_send(s, c.fd, reinterpret_cast<const char*>(&c.rep) + c.sent,
                         sizeof c.rep - c.sent, MSG_NOSIGNAL);
      io_uring_sqe_set_data64(s, tag(kSend, i));
    }
  }
  std::size_t add_connection(int fd) {
    std::size_t i = 0;
    while (i < connections_.size() && connections_[i]->fd >= 0) ++i;
    if (i == connections_.size()) connections_.push_back(std::make_unique<connection>());
    *connections_[i] = connection{};
    connections_[i]->fd = fd;
    return i;
  }
  static void drop(connection& c) {
    close(c.fd);
    c.fd = -1;
  }

  worker_state& w_;
  io_uring& ring_;
  int doorbell_;
  int listener_;
  bool multishot_ = true;
  std::vector<std::unique_ptr<connection>> connections_;
};

// A worker thread: hosts CPU w.cpu and serves its clients from one io_uring.
void uring_worker(xcall::domain& dom, worker_state& w) {
  w.thread = std::this_thread::get_id();
  std::uint16_t port = 0;
  const int listener = echo_harness::listen_on_loopback(0, port);  // the ring waits, not accept
  if (listener < 0) return echo_harness::worker_failed(w, "listen", errno);
  io_uring ring;
  if (const int e = io_uring_queue_init(kRingEntries, &ring, 0); e < 0) {
    close(listener);
    return echo_harness::worker_failed(w, "io_uring_queue_init", -e);
  }

  xcall::cpu_attachment cpu = dom.attach(w.cpu, {xcall::delivery_mode::fd, false});
  worker_loop loop(w, ring, cpu.doorbell_fd(), listener);
  echo_harness::worker_ready(w, port);
  loop.run();
  // Tearing the ring down cancels what is in flight: the doorbell's poll, the
  // accept, each connection's recv.
  io_uring_queue_exit(&ring);
  loop.close_connections();
  close(listener);
  cpu.detach();  // on this thread, outside any loop_wait: runs what is still queued
}

// 0 when this kernel lets us use io_uring as the workers do; kSkip (and why)
// when it does not; 1 on an unexpected error.
int probe_io_uring() {
  io_uring ring;
  if (const int e = io_uring_queue_init(8, &ring, 0); e < 0) {
    std::printf("io_uring: io_uring_queue_init: %s\n", std::strerror(-e));
    // ENOSYS: no io_uring (or a seccomp filter); EPERM/EACCES: forbidden
    // (kernel.io_uring_disabled, a container's policy); ENOMEM: the locked
    // memory limit of kernels before 5.12.
    if (e == -ENOSYS || e == -EPERM || e == -EACCES || e == -ENOMEM) {
      std::printf("io_uring: skipped: this kernel or container does not allow io_uring\n");
      return kSkip;
    }
    return 1;
  }
  const char* missing = nullptr;
  io_uring_probe* p = io_uring_get_probe_ring(&ring);
  if (p == nullptr) {
    missing = "IORING_REGISTER_PROBE (Linux 5.6)";
  } else if (!io_uring_opcode_supported(p, IORING_OP_POLL_ADD)) {
    missing = "IORING_OP_POLL_ADD";
  } else if (!io_uring_opcode_supported(p, IORING_OP_ACCEPT)) {
    missing = "IORING_OP_ACCEPT";
  } else if (!io_uring_opcode_supported(p, IORING_OP_RECV) ||
             !io_uring_opcode_supported(p, IORING_OP_SEND)) {
    missing = "IORING_OP_RECV/SEND";
  }
  if (p != nullptr) io_uring_free_probe(p);
  io_uring_queue_exit(&ring);
  if (missing != nullptr) {
    std::printf("io_uring: skipped: the kernel lacks %s\n", missing);
    return kSkip;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  echo_harness::options o;
  CLI::App app{
      "xcall io_uring: workers blocked in io_uring_submit_and_wait, reached by "
      "delivery_mode::fd"};
  echo_harness::add_options(app, o);
  CLI11_PARSE(app, argc, argv);
  if (const int rc = probe_io_uring(); rc != 0) return rc;
  return echo_harness::run(o, "io_uring", "io_uring_submit_and_wait", uring_worker);
}
