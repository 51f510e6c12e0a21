// Kernel timestamps on a UDP socket, shared by the two socket layers (UdpProbe, ProbeHub).
//
// Responsible for: switching a socket to kernel receive stamps (SO_TIMESTAMPNS) and software
// transmit stamps (SO_TIMESTAMPING via the error queue, optionally numbered per datagram with
// OPT_ID), and reading those stamps out of a received message's control data. Not responsible
// for: which request a stamp belongs to, or what to do without one (the caller falls back to a
// clock read).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>

namespace ntpmon::engine {

// Room for every control message these functions read, per received datagram.
inline constexpr std::size_t kTimestampControlBytes = 256;

struct KernelTimestamps {
  bool receive = false;   // SO_TIMESTAMPNS is on
  bool transmit = false;  // SO_TIMESTAMPING software transmit stamps are on
};

// Turns both on for `fd`; each that the kernel refuses stays off (the caller then reads the
// clock instead: still correct, only less exact). Transmit stamps make T1 exclude the system
// call's way down (several microseconds on loopback, which would bias every offset by half
// that). OPT_TSONLY: the error queue carries only the stamp, not a copy of the datagram; with
// `numbered`, OPT_ID numbers the stamps per datagram sent (0, 1, 2, ... from now on).
KernelTimestamps enable_kernel_timestamps(int fd, bool numbered);

// The SO_TIMESTAMPNS receive stamp in `msg`'s control data.
std::optional<timespec> receive_timestamp(msghdr& msg);

// A software transmit stamp read from the error queue, with its OPT_ID number when the socket
// numbers them.
struct TransmitTimestamp {
  timespec time{};
  std::optional<std::uint32_t> id;
};
std::optional<TransmitTimestamp> transmit_timestamp(msghdr& msg);

}  // namespace ntpmon::engine
