// Host port facts: the stable hash and whether a port can be bound right now.
#pragma once
#include <cstdint>
#include <string>

namespace berth {

uint64_t fnv1a64(const std::string& s);
// True if 127.0.0.1:port can be bound at this moment (nobody listens on it).
bool port_is_free(uint16_t port);

}  // namespace berth
