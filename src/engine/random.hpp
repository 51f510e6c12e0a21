// Randomness for the engine: the 64-bit transmit cookies of client requests.
//
// Responsible for: drawing unpredictable values from the kernel CSPRNG (getrandom(2)). The
// cookie is what makes an off-path spoofed reply fail the bogus-origin test (RFC 9109, RFC 5905
// §8 test 2), so it must not be guessable: no std::mt19937, no clock-derived seeds. Not
// responsible for: NTS key material (the NTS layer draws its own).
#pragma once

#include <cstdint>

namespace ntpmon::engine {

class Rng {
 public:
  virtual ~Rng() = default;
  virtual std::uint64_t next_u64() = 0;
};

// getrandom(2) with no flags: blocks only before the kernel pool is initialised at boot.
// Throws std::system_error if the kernel refuses (a broken system, not untrusted input).
class SystemRng final : public Rng {
 public:
  std::uint64_t next_u64() override;
};

}  // namespace ntpmon::engine
