#include "common/shared_library.h"

#include <dlfcn.h>

#include <map>
#include <memory>
#include <mutex>

namespace headshift {

StatusOr<SharedLibrary*> SharedLibrary::Load(const std::string& soname, const std::string& package) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<SharedLibrary>> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded.find(soname);
  if (it != loaded.end()) return it->second.get();
  void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    return Status::Failed("cannot load " + soname + ": " + (why ? why : "unknown reason"),
                          "install it: apt-get install " + package);
  }
  auto lib = std::unique_ptr<SharedLibrary>(new SharedLibrary(soname, handle));
  SharedLibrary* raw = lib.get();
  loaded.emplace(soname, std::move(lib));
  return raw;
}

void* SharedLibrary::Symbol(const char* name) const { return dlsym(handle_, name); }

}  // namespace headshift
