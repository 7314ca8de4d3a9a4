// Each berth verb registers itself on the CLI11 app. A verb's callback throws
// CLI::RuntimeError(code) to exit with a non-zero code.
#pragma once

namespace CLI {
class App;
}

namespace berth {
void register_serve(CLI::App& app);
void register_audit(CLI::App& app);
void register_log_writer(CLI::App& app);  // hidden: apps' rotated logs
}  // namespace berth
