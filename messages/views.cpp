#include "messages/views.hpp"

#include "config/urls.hpp"

namespace berth {

project_view project_view_of(const project_record& p, uint64_t last_seq, uint64_t events) {
  project_view v;
  v.name = p.name;
  v.spec = p.spec;
  v.production_port = p.production_port;
  v.preview_port = p.preview_port;
  v.created_us = p.created_us;
  v.updated_us = p.updated_us;
  v.last_seq = last_seq;
  v.events = events;
  v.source = p.source;
  return v;
}

preview_view preview_view_of(const preview_record& rec, const std::string& status, const std::string& reason,
                             uint16_t port, std::string public_url, std::string folder, size_t restarts) {
  preview_view v;
  v.status = status;
  v.port = port;
  v.url = local_url(port);
  v.public_url = std::move(public_url);
  v.folder = std::move(folder);
  v.restarts = restarts;
  if (status == "running" || status == "starting") v.pid = rec.process.pid;
  v.reason = reason;
  v.last_seq = rec.last_seq;
  v.events = rec.events;
  return v;
}

production_view production_view_of(const production_record& p, uint16_t stable_port, std::string public_url,
                                   std::string running) {
  production_view v;
  v.status = p.status;
  v.current = p.current;
  v.port = stable_port;
  v.url = local_url(stable_port);
  v.public_url = std::move(public_url);
  v.pid = p.status == "running" ? p.process.pid : 0;
  v.releases = p.releases.size();
  v.queued = queued_ids(p).size();
  v.running = std::move(running);
  v.reason = p.reason;
  v.last_seq = p.last_seq;
  v.events = p.events;
  return v;
}

}  // namespace berth
