#include "tests/integration/deploy_support.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <random>
#include <sstream>

#include <httplib.h>

namespace berth::it {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

std::string make_site(const temp_dir& tmp, const std::string& dir, const std::string& version,
                      const std::string& mode) {
  auto path = tmp / dir;
  fs::create_directories(path);
  for (const char* f : {"build.py", "server.py"})
    fs::copy_file(std::string(BERTH_TEST_APPS) + "/site/" + f, path + "/" + f,
                  fs::copy_options::overwrite_existing);
  set_site(path, "VERSION", version);
  set_site(path, "MODE", mode);
  return path;
}

void set_site(const std::string& site, const std::string& file, const std::string& value) {
  write_file(site + "/" + file, value + "\n");
}

json site_manifest(const std::string& name, const std::string& src, int keep, int health_timeout_s) {
  return {{"name", name},
          {"source", {{"path", src}}},
          {"preview",
           {{"command", {"python3", "server.py"}},
            {"health", {{"path", "/health"}, {"timeout_s", 10}, {"interval_ms", 50}}}}},
          {"build", {{"command", {"python3", "build.py"}}, {"artifacts", {"dist"}}}},
          {"production",
           {{"command", {"python3", "dist/server.py"}},
            {"health",
             {{"path", "/health"}, {"timeout_s", health_timeout_s}, {"interval_ms", 100},
              {"min_healthy_s", 0}}},
            {"keep", keep}}},
          {"env", {{"SITE_ENV", "test"}}}};
}

server_options deploy_server_options(std::vector<std::string> extra) {
  static std::mt19937 rng(std::random_device{}());
  int prod_lo = 8000 + static_cast<int>(rng() % 9) * 200;     // 8000-9799, 200 ports each
  int preview_lo = 4000 + static_cast<int>(rng() % 19) * 200;  // 4000-7799
  server_options o;
  o.extra_args = {"--stop-grace-ms", "500",
                  "--production-ports", std::to_string(prod_lo) + "-" + std::to_string(prod_lo + 199),
                  "--preview-ports", std::to_string(preview_lo) + "-" + std::to_string(preview_lo + 199)};
  o.extra_args.insert(o.extra_args.end(), extra.begin(), extra.end());
  return o;
}

std::string fetch_result::describe() const {
  if (status == -1) return "no answer (" + error + ")";
  std::string b = body.size() > 200 ? body.substr(0, 200) + "..." : body;
  return "HTTP " + std::to_string(status) + " '" + b + "'";
}

fetch_result fetch(uint16_t port, const std::string& path, std::chrono::milliseconds timeout,
                   const std::string& host) {
  httplib::Client cli("127.0.0.1", port);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  cli.set_connection_timeout(us / 1000000, us % 1000000);
  cli.set_read_timeout(us / 1000000, us % 1000000);
  cli.set_keep_alive(false);
  fetch_result out;
  httplib::Headers headers;
  if (!host.empty()) headers.emplace("Host", host);
  auto r = cli.Get(path.c_str(), headers);
  if (!r) {
    out.error = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  return out;
}

bool is_terminal_status(const std::string& s) {
  return s == "completed" || s == "unchanged" || s == "failed" || s == "cancelled";
}

json wait_done(client& api, const std::string& id, std::chrono::milliseconds timeout,
               const std::string& prefix) {
  auto until = steady::now() + timeout;
  json last;
  for (;;) {
    auto r = api.get(prefix + id);
    if (r.status == 200 && r.body.is_object()) {
      last = r.body;
      if (is_terminal_status(last.value("status", ""))) return last;
    } else {
      last = json{{"_http", r.describe()}};
    }
    if (steady::now() >= until) return last;
    std::this_thread::sleep_for(50ms);
  }
}

std::vector<std::string> phase_names(const json& detail) {
  std::vector<std::string> out;
  if (!detail.is_object() || !detail.contains("phases") || !detail["phases"].is_array()) return out;
  for (auto& p : detail["phases"])
    if (p.is_object() && p.contains("phase") && p["phase"].is_string()) out.push_back(p["phase"]);
  return out;
}

std::string brief(const json& d) {
  if (!d.is_object()) return d.dump();
  if (d.contains("_http")) return "request failed: " + d["_http"].get<std::string>();
  std::ostringstream s;
  s << "id=" << d.value("id", json()).dump() << " status=" << d.value("status", json()).dump()
    << " phase=" << d.value("phase", json()).dump() << " error=" << d.value("error", json()).dump()
    << " message=" << d.value("message", json()).dump();
  auto phases = phase_names(d);
  s << " phases=[";
  for (size_t i = 0; i < phases.size(); ++i) s << (i ? "," : "") << phases[i];
  s << "] resources=" << d.value("resources", json()).dump();
  if (d.contains("log") && d["log"].is_array()) {
    auto& log = d["log"];
    size_t from = log.size() > 12 ? log.size() - 12 : 0;
    s << "\nlast log lines:";
    for (size_t i = from; i < log.size(); ++i)
      s << "\n  " << (log[i].is_string() ? log[i].get<std::string>() : log[i].dump());
  }
  return s.str();
}

static bool is_hex12(const std::string& n) {
  if (n.size() != 12) return false;
  for (char c : n)
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c)))
      return false;
  return true;
}

std::set<std::string> release_dirs(const std::string& production_dir) {
  std::set<std::string> out;
  for (auto& n : list_dir(production_dir)) {
    std::error_code ec;
    if (is_hex12(n) && fs::is_directory(production_dir + "/" + n, ec) &&
        !fs::is_symlink(production_dir + "/" + n, ec))
      out.insert(n);
  }
  return out;
}

std::vector<std::string> tmp_leftovers(const std::string& root) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.find(".tmp-") != std::string::npos)
      out.push_back(fs::relative(it->path(), root, ec).string());
    if (it->is_symlink(ec)) it.disable_recursion_pending();
  }
  return out;
}

std::string current_link(const std::string& production_dir) {
  std::error_code ec;
  auto link = fs::path(production_dir) / "current";
  if (!fs::is_symlink(fs::symlink_status(link, ec))) return "";
  auto target = fs::read_symlink(link, ec);
  if (ec) return "";
  auto name = target.filename().string();
  if (name.empty()) name = target.parent_path().filename().string();  // "<hash>/"
  return name;
}

port_watch::port_watch(uint16_t port, std::string expected, std::chrono::milliseconds every)
    : port_(port), expected_(std::move(expected)), every_(every) {
  thread_ = std::thread([this] {
    auto t0 = steady::now();
    while (!stop_.load()) {
      auto r = fetch(port_, "/", 1000ms);
      polls_.fetch_add(1);
      if (r.status != 200 || r.body != expected_) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
        std::lock_guard<std::mutex> g(mu_);
        bad_.push_back("t+" + std::to_string(ms) + "ms: " + r.describe());
      }
      std::this_thread::sleep_for(every_);
    }
  });
}

port_watch::~port_watch() { stop(); }

void port_watch::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> port_watch::bad() const {
  std::lock_guard<std::mutex> g(mu_);
  return bad_;
}

std::string sse_result::describe() const {
  std::ostringstream s;
  s << "HTTP " << status << " content-type '" << content_type << "' ended=" << ended
    << " error='" << error << "' after " << seconds << " s, " << events.size() << " events:";
  for (auto& e : events) s << "\n  " << e.event << ": " << e.data;
  return s.str();
}

sse_result read_sse(uint16_t port, const std::string& path, std::chrono::milliseconds deadline) {
  sse_result out;
  httplib::Client cli("127.0.0.1", port);
  use_token(cli, port);
  cli.set_connection_timeout(2, 0);
  auto secs = std::max<long>(1, std::min<long>(15, deadline.count() / 1000));
  cli.set_read_timeout(secs, 0);
  auto t0 = steady::now();
  auto until = t0 + deadline;
  std::string buf;
  sse_event cur;
  bool stopped = false;
  auto flush_line = [&](const std::string& line) {
    if (line.empty()) {
      if (!cur.event.empty() || !cur.data.empty()) {
        if (cur.event.empty()) cur.event = "message";
        cur.body = json::parse(cur.data, nullptr, false);
        out.events.push_back(cur);
      }
      cur = sse_event{};
      return;
    }
    if (line[0] == ':') return;  // comment / keep-alive
    auto colon = line.find(':');
    std::string field = line.substr(0, colon), value;
    if (colon != std::string::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    }
    if (field == "event") cur.event = value;
    else if (field == "data") cur.data += (cur.data.empty() ? "" : "\n") + value;
  };
  auto r = cli.Get(
      path.c_str(),
      [&](const httplib::Response& res) {
        out.status = res.status;
        out.content_type = res.get_header_value("Content-Type");
        return true;
      },
      [&](const char* data, size_t len) {
        buf.append(data, len);
        size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
          auto line = buf.substr(0, nl);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          buf.erase(0, nl + 1);
          flush_line(line);
        }
        if (steady::now() >= until) {
          stopped = true;
          return false;
        }
        return true;
      });
  out.seconds = std::chrono::duration<double>(steady::now() - t0).count();
  if (!buf.empty()) flush_line(buf);
  flush_line("");
  if (stopped) {
    out.error = "deadline";
  } else if (!r) {
    out.error = httplib::to_string(r.error());
  } else {
    out.ended = true;
    if (out.status == -1) out.status = r->status;
    if (out.content_type.empty()) out.content_type = r->get_header_value("Content-Type");
  }
  return out;
}

}  // namespace berth::it
