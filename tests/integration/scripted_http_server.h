// ScriptedHttpServer: a tiny HTTP/1.1 server on 127.0.0.1 (ephemeral port) that answers each
// request with the next response of a script, to test how the S3 client handles errors,
// resets and short bodies that a healthy server never produces on demand. Serves one
// connection at a time, with keep-alive. Its methods are thread-safe.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/thread_annotations.h"

namespace strata::testing {

struct ScriptedResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers{};
  std::string body{};
  // Announce body.size() in Content-Length but send only this many bytes, then close.
  std::optional<size_t> cut_after{};
  // Read the request, then close the connection without answering.
  bool close_without_answer = false;
  // Read the request, then say nothing and keep the connection open (a frozen server) until
  // the client closes it or the server is destroyed. Nothing else is served meanwhile.
  bool never_answer = false;
  // Read the request head and only this many bytes of its body, then reset the connection
  // (RST) without answering.
  std::optional<size_t> reset_after_request_bytes{};
  // Send the body with Transfer-Encoding: chunked (cut_after then cuts the chunk stream).
  bool chunked = false;
  // Answer, then close the connection although the answer announced keep-alive.
  bool close_after_answer = false;
};

class ScriptedHttpServer {
 public:
  // After the script runs out, every request gets a 500.
  explicit ScriptedHttpServer(std::vector<ScriptedResponse> script);
  ~ScriptedHttpServer();

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_.load(); }
  int connections() const { return connections_.load(); }
  // The raw request heads received, in order.
  std::vector<std::string> request_heads();

 private:
  void Serve();
  void HandleConnection(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::vector<ScriptedResponse> script_ GUARDED_BY(mu_);
  size_t next_ GUARDED_BY(mu_) = 0;
  std::vector<std::string> heads_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace strata::testing
