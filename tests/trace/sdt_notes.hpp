// sdt_notes.hpp — the xcall probes of an ELF file as `readelf -n` shows
// them (.note.stapsdt), and the table of probes the library must have, with
// the argument signature of each. Shared by elf_notes_test.cpp and
// live_probe_test.cpp.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace xcall_trace_test {

/// One probe site: a nop in the code and its note.
struct sdt_site {
  std::string name;
  std::uint64_t location = 0;     ///< the nop's link-time address
  std::vector<std::string> args;  ///< "-4@%edi", "8@16(%rbx)", "4@$0", ...
};

/// Every probe of the xcall provider: its name and argument signature, one
/// "size" per argument, negative for a signed one (sdt's "-4@..."). Kept in
/// step with src/trace.hpp and docs/tracing.md by hand: a change here is a
/// change of the tracing interface.
inline const std::map<std::string, std::vector<int>>& expected_probes() {
  static const std::map<std::string, std::vector<int>> probes = {
      {"csd_queue_cpu", {4, 8, 8}},       // cpu, func, csd
      {"csd_function_entry", {8, 8, 4}},  // func, csd, cpu
      {"csd_function_exit", {8, 8, 4}},   // func, csd, cpu
      {"doorbell_ring", {4, 4}},          // cpu, kind
      {"doorbell_saved", {4}},            // cpu
      {"host_sleep", {4}},                // cpu
      {"host_wake", {4, 4}},              // cpu, woken
      {"proxy_run", {4, 4, 4}},           // home cpu, borrowed cpu, count
      {"cpu_online", {4}},                // cpu
      {"cpu_offline", {4}},               // cpu
      {"stall", {4, 8, 8}},               // cpu, waited ns, func
  };
  return probes;
}

/// The size field of one argument ("-4@%edi" -> -4), or 0 if malformed.
inline int arg_size(const std::string& arg) {
  const std::size_t at = arg.find('@');
  if (at == std::string::npos) return 0;
  try {
    return std::stoi(arg.substr(0, at));
  } catch (...) {
    return 0;
  }
}

/// The first whitespace-separated word of `text` (a trailing comma dropped).
inline std::string first_word(const std::string& text) {
  std::istringstream in(text);
  std::string w;
  in >> w;
  if (!w.empty() && w.back() == ',') w.pop_back();
  return w;
}

/// Runs a command, returns its standard output ("" if it cannot run).
inline std::string run_command(const std::string& command, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  const int st = ::pclose(p);
  if (status != nullptr) *status = st;
  return out;
}

/// The probe sites of `provider` in `file`, from `readelf -n --wide`.
inline std::vector<sdt_site> read_sdt_sites(const std::string& file,
                                            const std::string& provider_name = "xcall") {
  std::vector<sdt_site> sites;
  std::istringstream in(run_command("readelf -n --wide '" + file + "' 2>/dev/null"));
  bool ours = false;
  // No std::regex: GCC 12 warns inside it (-Wmaybe-uninitialized) under ASan.
  const auto after = [](const std::string& line, const char* key) -> std::optional<std::string> {
    const std::size_t at = line.find(key);
    if (at == std::string::npos) return std::nullopt;
    std::string rest = line.substr(at + std::strlen(key));
    rest.erase(0, rest.find_first_not_of(" \t"));
    return rest;
  };
  for (std::string line; std::getline(in, line);) {
    if (const auto provider = after(line, "Provider:")) {  // ends the --wide header line
      ours = first_word(*provider) == provider_name;
      if (ours) sites.emplace_back();
    } else if (!ours) {
      continue;
    } else if (const auto name = after(line, "Name:")) {
      sites.back().name = first_word(*name);
    } else if (const auto location = after(line, "Location:")) {
      sites.back().location = std::stoull(first_word(*location), nullptr, 16);
    } else if (const auto args = after(line, "Arguments:")) {
      std::istringstream words(*args);
      for (std::string a; words >> a;) sites.back().args.push_back(a);
    }
  }
  return sites;
}

}  // namespace xcall_trace_test
