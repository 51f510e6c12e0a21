#include "engine/kernel_timestamps.hpp"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>

#include <cstring>

namespace ntpmon::engine {

KernelTimestamps enable_kernel_timestamps(int fd, bool numbered) {
  KernelTimestamps on;
  const int yes = 1;
  on.receive = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &yes, sizeof(yes)) == 0;
  unsigned flags =
      SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_TSONLY;
  if (numbered) flags |= SOF_TIMESTAMPING_OPT_ID;
  on.transmit = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags)) == 0;
  return on;
}

std::optional<timespec> receive_timestamp(msghdr& msg) {
  std::optional<timespec> stamp;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
        c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
      timespec ts{};
      std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
      stamp = ts;
    }
  }
  return stamp;
}

std::optional<TransmitTimestamp> transmit_timestamp(msghdr& msg) {
  std::optional<timespec> time;
  std::optional<std::uint32_t> id;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING &&
        c->cmsg_len >= CMSG_LEN(sizeof(scm_timestamping))) {
      scm_timestamping stamps{};
      std::memcpy(&stamps, CMSG_DATA(c), sizeof(stamps));
      // ts[0] is the software stamp; all zero when the kernel had none.
      if (stamps.ts[0].tv_sec != 0 || stamps.ts[0].tv_nsec != 0) time = stamps.ts[0];
    } else if (((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) &&
               c->cmsg_len >= CMSG_LEN(sizeof(sock_extended_err))) {
      sock_extended_err err{};
      std::memcpy(&err, CMSG_DATA(c), sizeof(err));
      if (err.ee_origin == SO_EE_ORIGIN_TIMESTAMPING) id = err.ee_data;
    }
  }
  if (!time) return std::nullopt;
  return TransmitTimestamp{*time, id};
}

}  // namespace ntpmon::engine
