// The C++ baseline of bench/python_client.py: NtpClient::get_time (the call the Python binding
// makes) against one server, timed call by call.
//
//   client_roundtrip HOST:PORT SAMPLES ITERATIONS
//
// Prints one JSON line: {"median_us": ..., "mean_us": ..., "min_us": ..., "iterations": N,
// "failures": F}. Requests are sent back to back (interval 0), each waiting at most 2 s.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "client/ntp_client.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s HOST:PORT SAMPLES ITERATIONS\n", argv[0]);
    return 2;
  }
  const std::string host = argv[1];
  ntpmon::QueryOptions options;
  options.samples = std::atoi(argv[2]);
  options.interval = std::chrono::duration<double>(0);
  options.timeout = std::chrono::duration<double>(2.0);
  const int iterations = std::atoi(argv[3]);
  if (options.samples < 1 || iterations < 1) {
    std::fprintf(stderr, "SAMPLES and ITERATIONS must be positive\n");
    return 2;
  }
  const ntpmon::NtpClient client(ntpmon::config::Config{}, options);
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(iterations));
  int failures = 0;
  for (int i = 0; i < iterations; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const ntpmon::TimeResult result = client.get_time(host);
    const auto end = std::chrono::steady_clock::now();
    if (!result.ok) ++failures;
    us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  std::vector<double> sorted = us;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const double mean = std::accumulate(us.begin(), us.end(), 0.0) / static_cast<double>(us.size());
  std::printf(
      "{\"median_us\": %.3f, \"mean_us\": %.3f, \"min_us\": %.3f, \"iterations\": %d, "
      "\"failures\": %d}\n",
      median, mean, sorted.front(), iterations, failures);
  return failures == 0 ? 0 : 1;
}
