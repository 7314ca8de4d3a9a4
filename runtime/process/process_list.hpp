// Internal to the process runtime: finding the instances of a filter among the processes of
// the host, for process_runtime::list().
#pragma once
#include <string>
#include <vector>

#include "runtime/driver.hpp"

namespace berth::detail {

// Environment variables that carry an instance's labels.
constexpr const char* kProjectVar = "BERTH_PROJECT";
constexpr const char* kEnvVar = "BERTH_ENV";
constexpr const char* kReleaseVar = "BERTH_RELEASE";
// The data dir of the berth that started it: another berth on the host is not ours to list.
constexpr const char* kDataDirVar = "BERTH_DATA_DIR";

// The form of a data dir kept in kDataDirVar (canonical when it exists).
std::string data_dir_label(const std::string& data_dir);

// One ref per live process group (its leader when alive, else a live member) that has a
// member labelled as `filter` asks (every non-empty field), or, unlabelled (started by a
// berth from before labels), running under the filter's folder in `data_dir`. Never berth's
// own group, never pid or group 1, never a process labelled with another data dir.
std::vector<instance_ref> list_instances(const instance_labels& filter, const std::string& data_dir);

}  // namespace berth::detail
