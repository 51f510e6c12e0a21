// Telling a service manager how the daemon is doing: systemd's sd_notify protocol (a datagram
// to $NOTIFY_SOCKET), through libsystemd.
//
// Responsible for: READY=1 once the daemon polls and serves (the unit's Type=notify start
// completes only then, so `systemctl start` fails with the daemon's own error on a bad
// configuration or a busy port), RELOADING=1 and READY=1 around a SIGHUP reload, STOPPING=1
// when it stops, and a one-line STATUS= for `systemctl status`. Not responsible for: deciding
// when (the Daemon calls it). Outside systemd ($NOTIFY_SOCKET unset: a shell, a container)
// every call does nothing.
#pragma once

#include <cstdint>
#include <string_view>

namespace ntpmon::engine {

enum class ServiceState : std::uint8_t { kReady, kReloading, kStopping };

// Sends STATE (and STATUS=status when not empty) to the service manager, if there is one.
// mono_us is CLOCK_MONOTONIC in microseconds, sent with RELOADING=1 as systemd asks.
// Thread-safe; returns without blocking (a datagram on a local socket).
void notify_service(ServiceState state, std::string_view status, std::int64_t mono_us);

}  // namespace ntpmon::engine
