// The one check every reader makes before opening a file, so a missing file, a
// folder, or an unreadable file each get their own clear message.
#pragma once
#include <string>

namespace fw {

// Throws fw::Error "<path>: <what> not found" / "is a folder, not a <what>" /
// "cannot read <what>".
void require_readable_file(const std::string& path, const std::string& what);

// Creates the folder if need be and checks a file can be created in it, by creating
// and removing one (permission bits alone do not tell: root ignores them, a read-only
// mount does not show in them). Throws fw::Error "<path>: cannot create <what>: why" /
// "<what> is not writable: why".
void require_writable_folder(const std::string& path, const std::string& what);

// The whole file's bytes, after require_readable_file; a failed read names the file.
std::string read_file(const std::string& path, const std::string& what);

}  // namespace fw
