// Host port facts: the stable hash and whether a port can be bound right now.
#pragma once
#include <cstdint>
#include <string>

namespace berth {

uint64_t fnv1a64(const std::string& s);
// True if 127.0.0.1:port can be bound at this moment (nobody listens on it).
bool port_is_free(uint16_t port);
// A port the kernel just handed out on 127.0.0.1 (bind to 0, read it back, close); 0 on error.
uint16_t free_loopback_port();

}  // namespace berth
