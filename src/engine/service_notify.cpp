#include "engine/service_notify.hpp"

#include <systemd/sd-daemon.h>

#include <string>

namespace ntpmon::engine {

void notify_service(ServiceState state, std::string_view status, std::int64_t mono_us) {
  std::string message;
  switch (state) {
    case ServiceState::kReady:
      message = "READY=1";
      break;
    case ServiceState::kReloading:
      message = "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(mono_us);
      break;
    case ServiceState::kStopping:
      message = "STOPPING=1";
      break;
  }
  if (!status.empty()) {
    message += "\nSTATUS=";
    message += status;
  }
  // 0: keep $NOTIFY_SOCKET, the daemon notifies again on every reload. Without a service
  // manager sd_notify returns 0 and sends nothing; a failure to send is not the daemon's
  // problem to solve, so its result is not looked at.
  static_cast<void>(sd_notify(0, message.c_str()));
}

}  // namespace ntpmon::engine
