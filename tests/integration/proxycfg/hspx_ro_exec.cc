// hspx_ro_exec DIR -- PROGRAM ARGS...: runs PROGRAM in a private mount namespace where DIR is a
// read-only bind mount of itself. Used by proxycfg tests to prove "directory not writable" is
// refused with nothing changed: as root, chmod alone does not stop writes, a read-only mount does.
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 4 || std::strcmp(argv[2], "--") != 0) {
    std::fprintf(stderr, "usage: hspx_ro_exec DIR -- PROGRAM ARGS...\n");
    return 125;
  }
  const char* dir = argv[1];
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mount(dir, dir, nullptr, MS_BIND, nullptr) != 0 ||
      mount(nullptr, dir, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
    std::fprintf(stderr, "hspx_ro_exec: cannot make %s read-only: %s\n", dir, std::strerror(errno));
    return 125;
  }
  execv(argv[3], argv + 3);
  std::fprintf(stderr, "hspx_ro_exec: exec %s: %s\n", argv[3], std::strerror(errno));
  return 127;
}
