// Container ids from recorded cgroup paths of every runtime, cgroup path helpers, --cgroup_path
// checks and the id -> path resolver (on a directory tree the test builds).
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/cgroup.h"

namespace ecapture {
namespace {

const std::string kId = "4f1d6c1e2a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d";
const std::string kId2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string container(std::string_view path) {
  auto c = container_from_cgroup_path(path);
  return c ? c->runtime + " " + c->id : "none";
}

TEST(CgroupContainer, Docker) {
  EXPECT_EQ(container("/system.slice/docker-" + kId + ".scope"), "docker " + kId);
  EXPECT_EQ(container("/docker/" + kId), "docker " + kId);
  // A container with its own cgroup namespace and sub-cgroups (systemd inside).
  EXPECT_EQ(container("/system.slice/docker-" + kId + ".scope/init.scope"), "docker " + kId);
  EXPECT_EQ(container("/system.slice/docker.service"), "none");
  EXPECT_EQ(container("/docker/not-a-container-id"), "none");
  EXPECT_EQ(container("/docker/" + kId.substr(0, 12)), "none");  // bare ids are full length
}

TEST(CgroupContainer, ContainerdAndCriO) {
  const std::string pod =
      "/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/";
  EXPECT_EQ(container(pod + "cri-containerd-" + kId + ".scope"), "containerd " + kId);
  EXPECT_EQ(container(pod + "crio-" + kId + ".scope"), "cri-o " + kId);
  EXPECT_EQ(container(pod + "crio-conmon-" + kId + ".scope"), "none");
  EXPECT_EQ(container(pod), "none");
  // The cgroupfs driver: plain directories under kubepods.
  EXPECT_EQ(container("/kubepods/burstable/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/" + kId),
            "kubernetes " + kId);
  EXPECT_EQ(container("/kubepods/besteffort/pod1a2b3c4d/" + kId), "kubernetes " + kId);
  EXPECT_EQ(container("/other/pod1a2b3c4d/" + kId), "none");
}

TEST(CgroupContainer, Podman) {
  EXPECT_EQ(container("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId +
                      ".scope"),
            "podman " + kId);
  EXPECT_EQ(container("/machine.slice/libpod-" + kId + ".scope/container"), "podman " + kId);
  EXPECT_EQ(container("/machine.slice/libpod-conmon-" + kId + ".scope"), "none");
  EXPECT_EQ(container("/libpod_parent/libpod-" + kId), "podman " + kId);
}

TEST(CgroupContainer, NspawnAndLxc) {
  EXPECT_EQ(container("/machine.slice/machine-debian\\x2dbookworm.scope"),
            "systemd-nspawn debian-bookworm");
  EXPECT_EQ(container("/machine.slice/machine-web.scope/payload/system.slice/nginx.service"),
            "systemd-nspawn web");
  EXPECT_EQ(container("/system.slice/machine-web.scope"), "none");  // not under machine.slice
  EXPECT_EQ(container("/lxc.payload.web1/system.slice/nginx.service"), "lxc web1");
  EXPECT_EQ(container("/lxc/web1"), "lxc web1");
}

TEST(CgroupContainer, NoneAndNesting) {
  EXPECT_EQ(container(""), "none");
  EXPECT_EQ(container("/"), "none");
  EXPECT_EQ(container("/user.slice/user-1000.slice/session-3.scope"), "none");
  EXPECT_EQ(container("/system.slice/nginx.service"), "none");
  EXPECT_EQ(container("/ecap-test-1234"), "none");
  // Docker in a podman container: the innermost one is the process's.
  EXPECT_EQ(container("/machine.slice/libpod-" + kId + ".scope/container/docker/" + kId2),
            "docker " + kId2);
}

TEST(CgroupContainer, ShortId) {
  EXPECT_EQ(short_container_id(kId), "4f1d6c1e2a9b");
  EXPECT_EQ(short_container_id("debian-bookworm"), "debian-bookworm");
  EXPECT_EQ(short_container_id("abc"), "abc");
}

TEST(CgroupMount, FromMountinfo) {
  // The mount point this process sees for the cgroup2 file system (hybrid hosts have it below
  // the v1 controllers' tmpfs).
  struct statfs fs {};
  ASSERT_EQ(::statfs(cgroup2_mount_point().c_str(), &fs), 0);
  EXPECT_EQ(static_cast<unsigned long>(fs.f_type), CGROUP2_SUPER_MAGIC);
}

TEST(CgroupPath, RelativeAndUnder) {
  EXPECT_EQ(cgroup_relative_path("/sys/fs/cgroup", "/sys/fs/cgroup"), "/");
  EXPECT_EQ(cgroup_relative_path("/sys/fs/cgroup/", "/sys/fs/cgroup/a/b"), "/a/b");
  EXPECT_EQ(cgroup_relative_path("/sys/fs/cgroup", "/sys/fs/cgroupx/a"), std::nullopt);
  EXPECT_EQ(cgroup_relative_path("/sys/fs/cgroup", "/tmp"), std::nullopt);
  EXPECT_TRUE(cgroup_path_under("/a/b", "/a"));
  EXPECT_TRUE(cgroup_path_under("/a", "/a"));
  EXPECT_TRUE(cgroup_path_under("/a", "/"));
  EXPECT_FALSE(cgroup_path_under("/ab", "/a"));
  EXPECT_FALSE(cgroup_path_under("/b", "/a"));
  EXPECT_FALSE(cgroup_path_under("", "/"));  // unknown cgroup: under nothing
}

TEST(CgroupDir, BadPaths) {
  // /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one.
  const std::string mount = cgroup2_mount_point();
  auto missing = resolve_cgroup_dir("/nonexistent/ecap");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message,
            "/nonexistent/ecap: no such directory (give a cgroup v2 directory: one under " +
                mount + ")");
  auto file = resolve_cgroup_dir("/proc/self/status");
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().message,
            "/proc/self/status: not a directory (give a cgroup v2 directory: one under " + mount +
                ")");
  auto plain = resolve_cgroup_dir("/tmp");
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().message,
            "/tmp: not a cgroup v2 directory (it is not on a cgroup2 file system; give one under " +
                mount + ")");
}

TEST(CgroupDir, HierarchyRoot) {
  const std::string mount = cgroup2_mount_point();
  auto root = resolve_cgroup_dir(mount + "/");
  ASSERT_TRUE(root) << root.error().to_string();
  struct stat st {};
  ASSERT_EQ(::stat(mount.c_str(), &st), 0);
  EXPECT_EQ(root->id, st.st_ino);
  EXPECT_EQ(root->path, "/");
}

class CgroupResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ecap-cgroup-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_ / "system.slice" / ("docker-" + kId + ".scope"));
    std::filesystem::create_directories(dir_ / "user.slice");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  uint64_t ino(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_ino;
  }
  std::filesystem::path dir_;
};

// A tree that is not cgroupfs has no kernfs handles: the resolver finds directories by walking.
TEST_F(CgroupResolverTest, ResolvesByWalking) {
  CgroupResolver r(dir_.string());
  EXPECT_EQ(r.lookup(0), nullptr);
  const uint64_t id = ino(dir_ / "system.slice" / ("docker-" + kId + ".scope"));
  auto info = r.lookup(id);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->id, id);
  EXPECT_EQ(info->path, "/system.slice/docker-" + kId + ".scope");
  EXPECT_EQ(info->container_id, kId);
  EXPECT_EQ(info->container_runtime, "docker");
  EXPECT_EQ(r.lookup(id), info);  // cached: the same object
  auto user = r.lookup(ino(dir_ / "user.slice"));
  ASSERT_NE(user, nullptr);
  EXPECT_EQ(user->path, "/user.slice");
  EXPECT_EQ(user->container_id, "");
  EXPECT_EQ(r.lookup(ino(dir_))->path, "/");
  auto gone = r.lookup(ino(dir_ / "user.slice") + 1000000);
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(gone->path, "");
}

TEST_F(CgroupResolverTest, CacheIsBounded) {
  CgroupResolver r(dir_.string(), 2);
  for (uint64_t id = 1; id <= 10; ++id) (void)r.lookup(id);
  EXPECT_LE(r.cached(), 2u);
}

}  // namespace
}  // namespace ecapture
