#include "tests/integration/scripted_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace strata::testing {
namespace {

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Waits up to 50 ms for `fd` to be readable; false on timeout.
bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 50) > 0;
}

}  // namespace

ScriptedHttpServer::ScriptedHttpServer(std::vector<ScriptedResponse> script)
    : script_(std::move(script)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 8) != 0) {
    std::abort();  // test set-up failure
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

ScriptedHttpServer::~ScriptedHttpServer() {
  stop_ = true;
  thread_.join();
  close(listen_fd_);
}

std::vector<std::string> ScriptedHttpServer::request_heads() {
  std::lock_guard lock(mu_);
  return heads_;
}

void ScriptedHttpServer::Serve() {
  while (!stop_) {
    if (!Readable(listen_fd_)) continue;
    const int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    connections_++;
    HandleConnection(fd);
    close(fd);
  }
}

void ScriptedHttpServer::HandleConnection(int fd) {
  std::string buffer;
  while (!stop_) {
    // Read one request head and its body.
    size_t head_end;
    while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (stop_) return;
      if (!Readable(fd)) continue;
      char chunk[65536];
      const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return;  // client closed
      buffer.append(chunk, static_cast<size_t>(n));
    }
    std::string head = buffer.substr(0, head_end);
    size_t body_length = 0;
    for (const char* name : {"Content-Length:", "content-length:"}) {
      const size_t at = head.find(name);
      if (at != std::string::npos) body_length = std::strtoull(head.c_str() + at + 15, nullptr, 10);
    }
    std::optional<size_t> reset_after;
    {
      std::lock_guard lock(mu_);
      if (next_ < script_.size()) reset_after = script_[next_].reset_after_request_bytes;
    }
    if (reset_after) {
      // Take the head and part of the body, then reset: the client sees it mid-send.
      while (buffer.size() < head_end + 4 + std::min(*reset_after, body_length)) {
        char chunk[65536];
        const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        buffer.append(chunk, static_cast<size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        heads_.push_back(head);
        ++next_;
      }
      requests_++;
      linger hard{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
      return;  // the caller closes: RST
    }
    while (buffer.size() < head_end + 4 + body_length) {
      char chunk[65536];
      const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return;
      buffer.append(chunk, static_cast<size_t>(n));
    }
    buffer.erase(0, head_end + 4 + body_length);
    requests_++;

    ScriptedResponse response;
    {
      std::lock_guard lock(mu_);
      heads_.push_back(head);
      if (next_ < script_.size()) {
        response = script_[next_++];
      } else {
        response.status = 500;
        response.body = "<Error><Code>InternalError</Code><Message>script ended</Message></Error>";
      }
    }
    if (response.close_without_answer) return;
    if (response.never_answer) {
      char byte;
      while (!stop_) {
        if (Readable(fd) && recv(fd, &byte, 1, 0) <= 0) return;  // the client gave up
      }
      return;
    }
    const bool is_head = head.rfind("HEAD ", 0) == 0;
    std::string out = "HTTP/1.1 " + std::to_string(response.status) + " Scripted\r\n";
    for (const auto& [name, value] : response.headers) out += name + ": " + value + "\r\n";
    std::string body = response.body;
    if (response.chunked && !is_head) {
      // Two chunks and the terminating one; cut_after cuts this encoded stream.
      const size_t half = body.size() / 2;
      char size1[32], size2[32];
      std::snprintf(size1, sizeof size1, "%zx\r\n", half);
      std::snprintf(size2, sizeof size2, "%zx\r\n", body.size() - half);
      body = std::string(size1) + body.substr(0, half) + "\r\n" + size2 + body.substr(half) +
             "\r\n0\r\n\r\n";
      out += "Transfer-Encoding: chunked\r\n\r\n";
    } else {
      out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    }
    if (!is_head) out += response.cut_after ? body.substr(0, *response.cut_after) : body;
    if (!SendAll(fd, out) || response.cut_after || response.close_after_answer) return;
  }
}

}  // namespace strata::testing
