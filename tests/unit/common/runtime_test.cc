// common/ runtime helpers: libraries loaded on first use (SharedLibrary, the libpq stubs) and
// prefaulting (fewer page faults, same contents).
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/prefault.h"
#include "common/shared_library.h"

namespace headshift {
namespace {

long MinorFaults() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

bool Mapped(const std::string& soname) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find(soname) != std::string::npos) return true;
  }
  return false;
}

TEST(SharedLibraryTest, MissingLibraryNamesItAndThePackage) {
  auto lib = SharedLibrary::Load("libheadshift-no-such-library.so.7", "libheadshift-nothing7");
  ASSERT_FALSE(lib.ok());
  EXPECT_NE(lib.status().message().find("libheadshift-no-such-library.so.7"), std::string::npos);
  EXPECT_NE(lib.status().hint().find("apt-get install libheadshift-nothing7"), std::string::npos);
}

// This test binary links headshift_common like the CLI: libpq is not mapped at start, and the
// first libpq call (through the stubs) loads it and gets libpq's real answer.
TEST(SharedLibraryTest, LibpqIsLoadedAtFirstUseOnly) {
  EXPECT_FALSE(Mapped("libpq.so")) << "libpq was loaded at start-up";
  EXPECT_FALSE(Mapped("libcurl.so")) << "libcurl was loaded at start-up";
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse("host=db.example port=6543 dbname=hs", &err);
  ASSERT_NE(opts, nullptr);
  EXPECT_EQ(err, nullptr);
  std::string port;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (std::string(o->keyword) == "port" && o->val) port = o->val;
  }
  PQconninfoFree(opts);
  EXPECT_EQ(port, "6543");
  EXPECT_TRUE(Mapped("libpq.so.5"));
  EXPECT_TRUE(LoadLibpq().ok());
  auto again = SharedLibrary::Load("libpq.so.5", "libpq5");
  ASSERT_TRUE(again.ok());
  EXPECT_NE((*again)->Symbol("PQexec"), nullptr);
  EXPECT_EQ((*again)->Symbol("PQheadshiftNoSuchFunction"), nullptr);
}

TEST(PrefaultTest, PrefaultedPagesDoNotFaultAndKeepTheirContents) {
  constexpr size_t kPages = 512, kPage = 4096;
  void* mem = mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* p = static_cast<char*>(mem);
  if (madvise(p, kPage, 23 /* MADV_POPULATE_WRITE */) != 0) GTEST_SKIP() << "kernel before 5.14";
  std::memcpy(p, "kept", 5);
  PrefaultForWrite(p, kPages * kPage);
  long before = MinorFaults();
  for (size_t i = 0; i < kPages; ++i) p[i * kPage + 100] = 1;
  long faults = MinorFaults() - before;
  EXPECT_LT(faults, 16) << "writes to prefaulted pages still faulted";
  EXPECT_STREQ(p, "kept");
  munmap(mem, kPages * kPage);
}

TEST(PrefaultTest, ReservePrefaultedGrowsAndKeepsElements) {
  std::vector<int> v = {1, 2, 3};
  ReservePrefaulted(v, 100000);
  EXPECT_GE(v.capacity(), 100000u);
  EXPECT_EQ(v, (std::vector<int>{1, 2, 3}));
  std::string s = "head";
  ReservePrefaulted(s, 1 << 20);
  EXPECT_GE(s.capacity(), size_t{1} << 20);
  EXPECT_EQ(s, "head");
  ReservePrefaulted(s, 10);  // never shrinks
  EXPECT_GE(s.capacity(), size_t{1} << 20);
}

}  // namespace
}  // namespace headshift
