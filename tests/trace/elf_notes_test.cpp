// elf_notes_test.cpp — the static trace points are in the binary: every
// probe of the xcall provider (sdt_notes.hpp's table) has at least one
// site in the ELF notes (`readelf -n`) of a program that links the library,
// and every site has the documented argument signature (count, sizes,
// signedness; not the registers, which the compiler picks). Built with
// XCALL_TRACE off, there must be none.
//
// It fails if a probe is removed or renamed, if one of its arguments is
// added, dropped or changes type, or if a build with XCALL_TRACE=OFF still
// carries probes.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "sdt_notes.hpp"

namespace {

using xcall_trace_test::arg_size;
using xcall_trace_test::expected_probes;
using xcall_trace_test::read_sdt_sites;

std::string signature(const std::vector<int>& sizes) {
  std::string s;
  for (int n : sizes) {
    if (!s.empty()) s += ' ';
    s += std::to_string(n);
  }
  return s;
}

TEST(ElfNotesTest, ReadelfIsThere) {
  int status = -1;
  const std::string out = xcall_trace_test::run_command("readelf --version 2>&1", &status);
  ASSERT_EQ(status, 0) << "readelf (binutils) is needed: " << out;
}

// The file that holds the probes: the program that links the static library
// (or the shared library itself).
TEST(ElfNotesTest, EveryProbeWithItsSignature) {
  const auto sites = read_sdt_sites(XCALL_TRACE_PROBE_FILE);
  if (!XCALL_TRACE_BUILT) {
    EXPECT_TRUE(sites.empty()) << sites.size() << " xcall probes in a build with XCALL_TRACE=OFF";
    std::printf("XCALL_TRACE is off in this build: checked that no probe is there\n");
    return;
  }
  std::map<std::string, unsigned> seen;
  for (const auto& site : sites) {
    ++seen[site.name];
    const auto it = expected_probes().find(site.name);
    if (it == expected_probes().end()) {
      ADD_FAILURE() << "probe xcall:" << site.name
                    << " is not in the table (tests/trace/sdt_notes.hpp, docs/tracing.md)";
      continue;
    }
    std::vector<int> sizes;
    for (const auto& a : site.args) sizes.push_back(arg_size(a));
    EXPECT_EQ(signature(sizes), signature(it->second))
        << "xcall:" << site.name << " at 0x" << std::hex << site.location;
  }
  for (const auto& [name, sizes] : expected_probes()) {
    EXPECT_GT(seen[name], 0u) << "probe xcall:" << name << " (" << signature(sizes)
                              << ") missing from " << XCALL_TRACE_PROBE_FILE;
  }
  // Both engines queue and run: the percpu queue and the classic block's
  // announcement each queue; a drained sync call, a drained async call, a
  // classic walk and a local run each enter a function.
  EXPECT_GE(seen["csd_queue_cpu"], 2u);
  EXPECT_GE(seen["csd_function_entry"], 4u);
  EXPECT_EQ(seen["csd_function_entry"], seen["csd_function_exit"]);
  // The three doorbells: futex wake, signal, fd.
  EXPECT_GE(seen["doorbell_ring"], 3u);
}

// The library file itself carries them too (an archive's members, or the
// shared object): a consumer that links it gets them.
TEST(ElfNotesTest, LibraryCarriesEveryProbe) {
  const auto sites = read_sdt_sites(XCALL_TRACE_LIBRARY_FILE);
  if (!XCALL_TRACE_BUILT) {
    EXPECT_TRUE(sites.empty());
    return;
  }
  std::map<std::string, unsigned> seen;
  for (const auto& site : sites) ++seen[site.name];
  for (const auto& [name, sizes] : expected_probes()) {
    EXPECT_GT(seen[name], 0u) << "probe xcall:" << name << " missing from "
                              << XCALL_TRACE_LIBRARY_FILE;
  }
}

}  // namespace
