#include "messages/views.hpp"

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
  return v;
}

}  // namespace berth
