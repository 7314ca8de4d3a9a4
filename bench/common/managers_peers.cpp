#include "bench/common/managers_peers.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench/common/managers_apps.hpp"

namespace berth::bench {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail(const std::string& s, size_t max = 3000) { return s.size() > max ? "..." + s.substr(s.size() - max) : s; }

// Runs argv in cwd with env to its end (bounded); output (stdout+stderr) into *output.
int run_to_end(const std::vector<std::string>& argv, const std::string& cwd, const std::map<std::string, std::string>& env,
               const std::string& log, std::string* output) {
  std::string error;
  auto before = fs::exists(log) ? fs::file_size(log) : 0;
  pid_t pid = spawn_in(argv, cwd, env, log, &error);
  if (pid < 0) {
    if (output) *output = error;
    return -1;
  }
  int rc = wait_child(pid, 120s);
  if (output) *output = read_all(log).substr(before);
  return rc;
}

}  // namespace

// ---- pm2 -------------------------------------------------------------------------------------

pm2_manager::pm2_manager(std::string pm2, std::string dir)
    : pm2_(std::move(pm2)), dir_(std::move(dir)), home_(dir_ + "/pm2-home") {
  fs::create_directories(home_);
}

std::string pm2_manager::start_daemon() {
  std::string out;
  int rc = run({"ping"}, &out);
  if (rc != 0 || daemon_pid() <= 0) return "pm2 ping exited " + std::to_string(rc) + ": " + tail(out);
  return "";
}

std::string pm2_manager::write_ecosystem(const std::string& set, const std::vector<managed_app>& apps, bool cluster,
                                         int instances) {
  json list = json::array();
  for (auto& a : apps) {
    bool binary = a.argv[0].rfind("./", 0) == 0;  // a native program in the app folder
    json app = {{"name", a.name},
                {"cwd", a.dir},
                {"env", {{"PORT", std::to_string(a.port)}, {"HOST", "127.0.0.1"}}},
                {"autorestart", true},
                {"out_file", a.dir + "/pm2-out.log"},
                {"error_file", a.dir + "/pm2-err.log"}};
    std::vector<std::string> args(a.argv.begin() + 1, a.argv.end());
    if (binary) {
      app["script"] = a.dir + "/" + a.argv[0].substr(2);
      app["interpreter"] = "none";
      app["args"] = args;
    } else {  // interpreter + script (+ args)
      app["interpreter"] = a.argv[0];
      app["script"] = a.dir + "/" + args.at(0);
      app["args"] = std::vector<std::string>(args.begin() + 1, args.end());
    }
    if (cluster) {
      app["exec_mode"] = "cluster";
      app["instances"] = instances;
      app.erase("interpreter");  // cluster mode runs node scripts in pm2's own node
    } else {
      app["exec_mode"] = "fork";
    }
    list.push_back(app);
  }
  std::string file = dir_ + "/" + set + ".json";
  std::ofstream(file) << json{{"apps", list}}.dump(2);
  return file;
}

pid_t pm2_manager::start_async(const std::string& ecosystem) {
  std::string error;
  return spawn_in({pm2_, "start", ecosystem}, dir_, {{"PM2_HOME", home_}}, dir_ + "/pm2-cli.log", &error);
}

int pm2_manager::run(const std::vector<std::string>& args, std::string* output) {
  std::vector<std::string> argv{pm2_};
  argv.insert(argv.end(), args.begin(), args.end());
  // The CLI's cwd is inherited by the daemon it starts: keep both in the temp dir.
  return run_to_end(argv, dir_, {{"PM2_HOME", home_}}, dir_ + "/pm2-cli.log", output);
}

pid_t pm2_manager::daemon_pid() const {
  auto s = read_all(home_ + "/pm2.pid");
  try {
    pid_t pid = static_cast<pid_t>(std::stol(s));
    return ::kill(pid, 0) == 0 ? pid : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

std::string pm2_manager::log_tail() const {
  return "pm2 CLI:\n" + tail(read_all(dir_ + "/pm2-cli.log")) + "\npm2 daemon:\n" + tail(read_all(home_ + "/pm2.log"));
}

void pm2_manager::shutdown() {
  pid_t god = daemon_pid();
  if (god <= 0) return;
  run({"kill"});
  for (int i = 0; i < 500 && ::kill(god, 0) == 0; ++i) std::this_thread::sleep_for(10ms);
  if (::kill(god, 0) == 0) ::kill(god, SIGKILL);
}

// ---- supervisord -----------------------------------------------------------------------------

supervisord_manager::supervisord_manager(std::string supervisord, std::string supervisorctl, std::string dir)
    : supervisord_(std::move(supervisord)), supervisorctl_(std::move(supervisorctl)), dir_(std::move(dir)),
      conf_(dir_ + "/supervisord.conf") {
  fs::create_directories(dir_ + "/logs");
}

std::string supervisord_manager::start(const std::map<std::string, std::vector<managed_app>>& groups) {
  std::ofstream conf(conf_);
  conf << "[unix_http_server]\nfile=" << dir_ << "/supervisor.sock\n\n"
       << "[supervisord]\nlogfile=" << dir_ << "/supervisord.log\npidfile=" << dir_ << "/supervisord.pid\n"
       << "childlogdir=" << dir_ << "/logs\ndirectory=" << dir_ << "\nloglevel=info\n\n"
       << "[rpcinterface:supervisor]\n"
       << "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
       << "[supervisorctl]\nserverurl=unix://" << dir_ << "/supervisor.sock\n";
  for (auto& [group, apps] : groups) {
    std::string names;
    for (auto& a : apps) names += (names.empty() ? "" : ",") + a.name;
    conf << "\n[group:" << group << "]\nprograms=" << names << "\n";
  }
  for (auto& [group, apps] : groups)
    for (auto& a : apps) {
      // supervisord looks a program up from its own cwd, before it enters `directory`.
      std::string command = a.argv[0].rfind("./", 0) == 0 ? a.dir + "/" + a.argv[0].substr(2) : a.argv[0];
      for (size_t i = 1; i < a.argv.size(); ++i) command += " " + a.argv[i];
      conf << "\n[program:" << a.name << "]\ncommand=" << command << "\ndirectory=" << a.dir
           << "\nenvironment=PORT=\"" << a.port << "\",HOST=\"127.0.0.1\"\nautostart=false\nautorestart=true\n"
           << "stdout_logfile=" << a.dir << "/supervisor-out.log\nredirect_stderr=true\n";
    }
  conf.close();
  std::string error;
  pid_ = spawn_in({supervisord_, "-n", "-c", conf_}, dir_, {}, dir_ + "/supervisord.out", &error);
  if (pid_ < 0) return error;
  for (int i = 0; i < 200; ++i) {
    std::string out;
    if (ctl({"pid"}, &out) == 0) return "";
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return "supervisord exited at start: " + log_tail();
    }
    std::this_thread::sleep_for(50ms);
  }
  return "supervisord did not answer within 10 s: " + log_tail();
}

pid_t supervisord_manager::start_group_async(const std::string& group) {
  std::string error;
  return spawn_in({supervisorctl_, "-c", conf_, "start", group + ":*"}, dir_, {}, dir_ + "/supervisorctl.log", &error);
}

int supervisord_manager::ctl(const std::vector<std::string>& args, std::string* output) {
  std::vector<std::string> argv{supervisorctl_, "-c", conf_};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_to_end(argv, dir_, {}, dir_ + "/supervisorctl.log", output);
}

std::string supervisord_manager::log_tail() const {
  return "supervisord:\n" + tail(read_all(dir_ + "/supervisord.log")) + tail(read_all(dir_ + "/supervisord.out"));
}

void supervisord_manager::shutdown() {
  if (pid_ <= 0) return;
  ctl({"shutdown"});
  if (wait_child(pid_, 10s) < 0) std::fprintf(stderr, "supervisord did not shut down in 10 s: killed\n");
  pid_ = -1;
}

}  // namespace berth::bench
