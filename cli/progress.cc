#include "cli/progress.h"

#include <cstdio>

namespace headshift::cli {

std::function<void(const std::string&, const std::string&, bool, double)> StepProgress(Context& ctx) {
  if (!ctx.interactive()) return nullptr;
  return [](const std::string& tenant, const std::string& step, bool done, double ms) {
    if (!done) {
      fprintf(stderr, "  %-8s %-18s ...", tenant.c_str(), step.c_str());
    } else {
      fprintf(stderr, "\r  %-8s %-18s done  %7.0f ms\n", tenant.c_str(), step.c_str(), ms);
    }
    fflush(stderr);
  };
}

std::function<void(const std::string&)> LineProgress(Context& ctx) {
  if (!ctx.interactive()) return nullptr;
  return [](const std::string& line) {
    fprintf(stderr, "  %s\n", line.c_str());
    fflush(stderr);
  };
}

}  // namespace headshift::cli
