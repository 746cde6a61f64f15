// epoll — worker threads that each run their own epoll loop, blocked in
// epoll_wait(-1) between events, and still answer cross-calls at once:
// delivery_mode::fd (xcall/options.hpp) and xcall::loop_wait (xcall/cpu.hpp).
//
// Each worker attaches CPU i with delivery_mode::fd, puts the attachment's
// doorbell_fd() (an eventfd) into its epoll set next to its listening socket
// and its connections, and wraps each epoll_wait in a loop_wait:
//
//   {
//     xcall::loop_wait wait;  // "about to block": a call queued now writes the eventfd
//     n = epoll_wait(ep, events, kEvents, wait.may_block() ? -1 : 0);
//   }  // "back": reads the eventfd if it was written, runs the queued calls
//
// The doorbell's own event needs no handling: by the time the loop looks at
// the events, the loop_wait's end has read the eventfd and run the calls, on
// this thread. Calls that find the worker running its own code (handling
// events) cost their sender no system call; the worker runs them at its next
// loop_wait, and may_block() is then false, so that epoll_wait does not block.
//
// The rest of the program (the echo protocol, the clients, the control
// thread that calls the workers and checks every call) is shared with
// examples/io_uring: ../common/echo_harness.hpp.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <unordered_map>

#include <CLI/CLI.hpp>

#include "common/echo_harness.hpp"
#include "xcall/xcall.hpp"

namespace {

using echo_harness::worker_state;

// One client connection: the part of its current request read so far.
struct connection {
  echo_harness::request req;
  std::size_t have = 0;
};

bool watch(int ep, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
}

// Reads what the connection has; echoes each complete request. False: close it.
bool serve(worker_state& w, int fd, connection& c) {
  for (;;) {
    const ssize_t r = read(fd, reinterpret_cast<char*>(&c.req) + c.have, sizeof c.req - c.have);
    if (r == 0) return false;  // the client closed
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;  // all read: back to epoll_wait
      ++w.errors;
      return false;
    }
    c.have += static_cast<std::size_t>(r);
    if (c.have < sizeof c.req) continue;
    c.have = 0;
    const echo_harness::reply rep = echo_harness::make_reply(w, c.req);
    // The client waits for each reply before it sends again, so the socket's
    // send buffer is empty here and a short write cannot happen. A server
    // whose clients pipeline would keep the rest and wait for EPOLLOUT.
    if (send(fd, &rep, sizeof rep, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof rep)) {
      ++w.errors;
      return false;
    }
    echo_harness::echo_sent(w);
  }
}

// A worker thread: hosts CPU w.cpu and serves its clients from one epoll loop.
void epoll_worker(xcall::domain& dom, worker_state& w) {
  w.thread = std::this_thread::get_id();
  std::uint16_t port = 0;
  const int listener = echo_harness::listen_on_loopback(SOCK_NONBLOCK, port);
  if (listener < 0) return echo_harness::worker_failed(w, "listen", errno);

  xcall::cpu_attachment cpu = dom.attach(w.cpu, {xcall::delivery_mode::fd, false});
  const int doorbell = cpu.doorbell_fd();
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0 || !watch(ep, doorbell) || !watch(ep, listener)) {
    echo_harness::worker_failed(w, "epoll", errno);
  } else {
    echo_harness::worker_ready(w, port);
    std::unordered_map<int, connection> connections;
    constexpr int kEvents = 16;
    epoll_event events[kEvents];
    while (!w.stop) {
      int n;
      int err;  // epoll_wait's errno: the calls run below may change errno
      {
        xcall::loop_wait wait;
        ++(wait.may_block() ? w.blocked_waits : w.zero_waits);
        n = epoll_wait(ep, events, kEvents, wait.may_block() ? -1 : 0);
        err = errno;
      }  // calls sent to this CPU ran here, on this thread; w.stop may be set now
      if (n < 0) {
        if (err == EINTR) continue;
        ++w.errors;
        break;
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == doorbell) continue;  // already read by the loop_wait's end
        if (fd == listener) {
          int conn;
          while ((conn = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            if (!watch(ep, conn)) {
              ++w.errors;
              close(conn);
              continue;
            }
            connections[conn] = connection{};
          }
          if (errno != EAGAIN && errno != EINTR) ++w.errors;
          continue;
        }
        if (!serve(w, fd, connections[fd])) {
          close(fd);  // also leaves the epoll set
          connections.erase(fd);
        }
      }
    }
    for (const auto& entry : connections) close(entry.first);
  }
  if (ep >= 0) close(ep);
  close(listener);
  cpu.detach();  // on this thread, outside any loop_wait: runs what is still queued
}

}  // namespace

int main(int argc, char** argv) {
  echo_harness::options o;
  CLI::App app{"xcall epoll: workers blocked in epoll_wait(-1), reached by delivery_mode::fd"};
  echo_harness::add_options(app, o);
  CLI11_PARSE(app, argc, argv);
  return echo_harness::run(o, "epoll", "epoll_wait(-1)", epoll_worker);
}
