// The mysqld module's settings.
#include "modules/mysqld/mysqld_config.h"

namespace ecapture::mysqld {

const FieldTable& MysqldConfig::fields() const {
  return field_table<MysqldConfig>([](FieldTableBuilder<MysqldConfig>& b) {
    b.file(&MysqldConfig::mysqld, "-m,--mysqld", {"mysqldpath", "mysqlpath"},
           "mysqld/mariadbd binary (default: the running server's, /proc/<pid>/exe "
           "with --pid, else /usr/sbin/mariadbd)")
        .text(&MysqldConfig::funcname,
              {.flag = "-f,--funcname",
               .json = {"funcname"},
               .help = "function to hook (default: the exported dispatch_command)"})
        .number(&MysqldConfig::offset,
                {.flag = "--offset",
                 .json = {"offset"},
                 .help = "address of dispatch_command as nm shows it, for binaries without the "
                         "symbol",
                 .default_text = "0"});
    add_perf_reorder_rows(b);
    b.check([](const MysqldConfig& c) -> Result<void> {
      if (c.offset != 0 && !c.funcname.empty()) {
        return make_error(
            "--offset {:#x} and --funcname {} both name the function to hook: give "
            "only one",
            c.offset, c.funcname);
      }
      return {};
    });
    b.check_json([](const MysqldConfig& c) -> Result<void> {
      if (c.offset != 0 && !c.funcname.empty()) {
        return make_error(
            "fields 'offset' and 'funcname' both name the function to hook: give "
            "one");
      }
      return {};
    });
    b.json_unused({"elftype", "version", "versioninfo"});
  });
}

}  // namespace ecapture::mysqld
