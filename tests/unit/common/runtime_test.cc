// common/ runtime helpers: libraries loaded on first use (SharedLibrary, the libpq stubs) and
// prefaulting (fewer page faults, same contents).
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/prefault.h"
#include "common/redact.h"
#include "common/shared_library.h"
#include "common/subprocess.h"

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

// The deadline holds even when the command closes its output and then hangs (it used to wait for
// the exit without one: the 30 s sleep would end normally, with exit code 0), and the command's
// process group is killed.
TEST(RunArgvTest, DeadlineHoldsAfterTheCommandClosesItsOutput) {
  auto r = RunArgv({"sh", "-c", "exec >&- 2>&-; sleep 30"}, 300);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, -1);
}

// A command that exits while a process it started in the background still holds its output is
// done when it exits: exit code kept, not reported as timed out (it used to read until the
// deadline), and the background process is left running.
TEST(RunArgvTest, ExitCountsEvenIfABackgroundChildKeepsTheOutputOpen) {
  auto r = RunArgv({"sh", "-c", "sleep 30 & echo $!; exit 3"}, 20000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->exit_code, 3);
  pid_t background = static_cast<pid_t>(std::atoi(r->output.c_str()));
  ASSERT_GT(background, 0) << r->output;
  EXPECT_EQ(kill(background, SIGKILL), 0) << "the background process should still be running";
}

// The child sees neither headshift's secrets nor its ignored SIGPIPE.
TEST(RunArgvTest, ChildGetsNoSecretVariablesAndDefaultSignals) {
  ClearSecretsForTest();
  RegisterSecret("hs-test-secret-93412");
  setenv("HS_TEST_DSN", "host=db password=hs-test-secret-93412", 1);
  setenv("HS_TEST_PLAIN", "visible", 1);
  auto prev = std::signal(SIGPIPE, SIG_IGN);
  auto r = RunArgv({"sh", "-c", "echo \"[$HS_TEST_DSN][$HS_TEST_PLAIN]\"; grep SigIgn /proc/self/status"}, 10000);
  std::signal(SIGPIPE, prev);
  unsetenv("HS_TEST_DSN");
  unsetenv("HS_TEST_PLAIN");
  ClearSecretsForTest();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_NE(r->output.find("[][visible]"), std::string::npos) << r->output;
  size_t at = r->output.find("SigIgn:");
  ASSERT_NE(at, std::string::npos) << r->output;
  uint64_t ignored = std::strtoull(r->output.c_str() + at + 7, nullptr, 16);
  EXPECT_EQ(ignored & (1ull << (SIGPIPE - 1)), 0u) << r->output;
}

// Anyone who can write the directory could plant a symlink or a file of their own under the old
// predictable temp name (.<name>.<pid>.tmp): neither may be followed, reused or renamed into place.
TEST(AtomicFileTest, PlantedTempNamesAreNeitherFollowedNorReused) {
  char dir_template[] = "/tmp/hs-atomic-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  std::string victim = dir + "/victim", path = dir + "/snap.json";
  ASSERT_TRUE(WriteFileAtomically(victim, "untouched", 0644).ok());
  std::string planted = dir + "/.snap.json." + std::to_string(getpid()) + ".tmp";
  ASSERT_EQ(symlink(victim.c_str(), planted.c_str()), 0);

  ASSERT_TRUE(WriteFileAtomically(path, "secret snapshot", 0600).ok());
  EXPECT_EQ(*ReadFile(victim), "untouched");
  struct stat st {};
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode)) << "the result must be a regular file, not the planted symlink";
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*ReadFile(path), "secret snapshot");
  // Replacing again leaves no temp files behind (the planted link stays, untouched).
  ASSERT_TRUE(WriteFileAtomically(path, "v2", 0600).ok());
  int entries = 0;
  for (DIR* d = opendir(dir.c_str()); d;) {
    dirent* e = readdir(d);
    if (!e) {
      closedir(d);
      break;
    }
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++entries;
  }
  EXPECT_EQ(entries, 3);  // victim, snap.json, the planted link
  for (const auto& f : {victim, path, planted}) unlink(f.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace headshift
