// The bash and zsh modules' settings.
#include "modules/shell/shell_config.h"

namespace ecapture::shell {
namespace {

// The rows both shells share: the exit-status filter and eCapture's unused fields.
template <typename Config>
void add_shell_rows(FieldTableBuilder<Config>& b) {
  b.exit_status(&Config::errnumber,
                {.flag = "-e,--errnumber",
                 .json = {"errnumber", "errno"},
                 .help = "show only commands whose exit status is N (0-255; default: every "
                         "command)",
                 .max = 255})
      .check([](const Config& c) -> Result<void> {
        if (c.errnumber && (*c.errnumber < 0 || *c.errnumber > 255)) {
          return make_error(
              "invalid value {} for -e/--errnumber: an exit status is 0-255 (leave "
              "it out to show every command)",
              *c.errnumber);
        }
        return {};
      })
      .json_unused({"elftype", "elf_type", "readlinefuncname", "readline_func_name"});
}

}  // namespace

const FieldTable& BashConfig::fields() const {
  return field_table<BashConfig>([](FieldTableBuilder<BashConfig>& b) {
    b.file(&BashConfig::bash, "--bash", {"bashpath"},
           "bash executable to watch (default: $SHELL if it is bash, else /bin/bash)")
        .text(&BashConfig::readlineso,
              {.flag = "--readlineso",
               .json = {"readline"},
               .help = "readline library, when bash links it dynamically (default: bash's own "
                       "readline, else its DT_NEEDED libreadline.so)",
               .existing_file = true});
    add_shell_rows(b);
  });
}

const FieldTable& ZshConfig::fields() const {
  return field_table<ZshConfig>([](FieldTableBuilder<ZshConfig>& b) {
    b.file(&ZshConfig::zsh, "--zsh", {"zshpath"},
           "zsh executable to watch (default: $SHELL if it is zsh, else /bin/zsh)");
    add_shell_rows(b);
  });
}

std::string default_shell_path(const std::string& flag_value, const char* shell_env,
                               const std::string& name, const std::string& fallback) {
  if (!flag_value.empty()) return flag_value;
  if (shell_env != nullptr) {
    std::string s = shell_env;
    std::string base = s.substr(s.find_last_of('/') + 1);
    if (!s.empty() && base.find(name) != std::string::npos) return s;
  }
  return fallback;
}

}  // namespace ecapture::shell
