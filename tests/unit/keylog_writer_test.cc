// KeylogWriter: 0600 creation, append, one line per (label, client random), and removal of a
// file it created but never used.
#include "output/keylog_writer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace ecapture {
namespace {

class KeylogWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/keylog-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/keys.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string contents() const {
    std::ifstream f(path_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  std::string dir_, path_;
};

TEST_F(KeylogWriterTest, CreatesPrivateFileAndWritesEachLineOnce) {
  auto w = KeylogWriter::open(path_);
  ASSERT_TRUE(w);
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(*(*w)->write("CLIENT_RANDOM", "aa", "bb"));
  EXPECT_FALSE(*(*w)->write("CLIENT_RANDOM", "aa", "cc"));  // same (label, random)
  EXPECT_TRUE(*(*w)->write("EXPORTER_SECRET", "aa", "dd"));
  EXPECT_EQ(contents(), "CLIENT_RANDOM aa bb\nEXPORTER_SECRET aa dd\n");
  EXPECT_EQ((*w)->lines_written(), 2u);
}

TEST_F(KeylogWriterTest, AppendsToAnExistingFile) {
  { std::ofstream(path_) << "# mine\n"; }
  auto w = KeylogWriter::open(path_);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->write("CLIENT_RANDOM", "01", "02"));
  (*w)->discard_if_unused();  // not ours: kept whatever happens
  EXPECT_EQ(contents(), "# mine\nCLIENT_RANDOM 01 02\n");
}

TEST_F(KeylogWriterTest, DiscardRemovesOnlyAnUnusedFileItCreated) {
  {
    auto w = KeylogWriter::open(path_);
    ASSERT_TRUE(w);
    (*w)->discard_if_unused();
  }
  EXPECT_FALSE(std::filesystem::exists(path_));
  {
    auto w = KeylogWriter::open(path_);
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->write("CLIENT_RANDOM", "01", "02"));
    (*w)->discard_if_unused();
  }
  EXPECT_EQ(contents(), "CLIENT_RANDOM 01 02\n");
  { std::ofstream(path_, std::ios::trunc); }  // exists, empty, not created by the next writer
  {
    auto w = KeylogWriter::open(path_);
    ASSERT_TRUE(w);
    (*w)->discard_if_unused();
  }
  EXPECT_TRUE(std::filesystem::exists(path_));
}

TEST_F(KeylogWriterTest, UnwritableDirectoryIsAnError) {
  auto w = KeylogWriter::open(dir_ + "/missing/keys.log");
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().to_string().find("missing/keys.log"), std::string::npos);
}

}  // namespace
}  // namespace ecapture
