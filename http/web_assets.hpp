// The dashboard's files (web/*), built into the binary by cmake/embed_web.cmake.
#pragma once
#include <cstddef>
#include <string>

namespace berth::http {

struct web_asset {
  const char* path;          // "/app.js"
  const char* content_type;  // "text/javascript; charset=utf-8"
  const unsigned char* data;
  size_t size;
};

extern const web_asset web_assets[];
extern const size_t web_asset_count;

// The file served at `path` ("/" is /index.html); null when there is none.
const web_asset* find_web_asset(const std::string& path);

}  // namespace berth::http
