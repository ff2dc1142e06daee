#include "common/logging.h"

#include <memory>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/redact.h"

namespace headshift {
namespace {

// Wraps another sink and redacts the formatted payload before it is written.
class RedactingSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit RedactingSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string redacted = Redact(std::string_view(msg.payload.data(), msg.payload.size()));
    spdlog::details::log_msg copy(msg.time, msg.source, msg.logger_name, msg.level, redacted);
    inner_->log(copy);
  }
  void flush_() override { inner_->flush(); }

 private:
  spdlog::sink_ptr inner_;
};

}  // namespace

Status InitLogging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return Status::BadInput("unknown --log-level '" + level + "'",
                            "use one of trace, debug, info, warn, error, critical, off");
  }
  auto inner = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic);
  inner->set_pattern("%^%L%$ %H:%M:%S.%e %v");  // the inner sink formats; the wrapper only redacts
  auto sink = std::make_shared<RedactingSink>(inner);
  auto logger = std::make_shared<spdlog::logger>("headshift", sink);
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

}  // namespace headshift
