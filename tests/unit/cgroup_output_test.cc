// The cgroup and container of an event in every encoding: text (container= after comm), JSON
// (four fields, also when unknown), protobuf (Event fields 12-15) and audit records.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "ecaptureq.pb.h"
#include "output/audit_text.h"
#include "output/encoders.h"

namespace ecapture {
namespace {

const std::string kId = "4f1d6c1e2a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d";

std::shared_ptr<const CgroupInfo> docker_cgroup() {
  auto c = std::make_shared<CgroupInfo>();
  c->id = 4242;
  c->path = "/system.slice/docker-" + kId + ".scope";
  c->container_id = kId;
  c->container_runtime = "docker";
  return c;
}

Message message(std::shared_ptr<const CgroupInfo> cg) {
  Message m;
  m.event.timestamp_ns = 1700000000123456789ull;
  m.event.pid = 10;
  m.event.tid = 11;
  m.event.comm = "curl";
  m.event.fd = 5;
  m.event.direction = Direction::kWrite;
  m.event.payload = "hello";
  m.event.length = 5;
  m.event.source = "openssl";
  m.event.cgroup = std::move(cg);
  return m;
}

TEST(CgroupOutput, Text) {
  const std::string in = encode_message_text(message(docker_cgroup()), false);
  EXPECT_NE(in.find(" comm=curl container=4f1d6c1e2a9b fd=5 "), std::string::npos) << in;
  auto plain = std::make_shared<CgroupInfo>();
  plain->id = 7;
  plain->path = "/user.slice";
  for (const auto& cg : {std::shared_ptr<const CgroupInfo>(plain),
                         std::shared_ptr<const CgroupInfo>()}) {
    const std::string out = encode_message_text(message(cg), false);
    EXPECT_NE(out.find(" comm=curl fd=5 "), std::string::npos) << out;
  }
}

TEST(CgroupOutput, Json) {
  auto j = nlohmann::json::parse(encode_message_json(message(docker_cgroup())));
  EXPECT_EQ(j["cgroup"], "/system.slice/docker-" + kId + ".scope");
  EXPECT_EQ(j["cgroup_id"], 4242);
  EXPECT_EQ(j["container_id"], kId);
  EXPECT_EQ(j["container_runtime"], "docker");
  auto none = nlohmann::json::parse(encode_message_json(message(nullptr)));
  EXPECT_EQ(none["cgroup"], "");
  EXPECT_EQ(none["cgroup_id"], 0);
  EXPECT_EQ(none["container_id"], "");
  EXPECT_EQ(none["container_runtime"], "");
}

TEST(CgroupOutput, Protobuf) {
  event::LogEntry e;
  ASSERT_TRUE(e.ParseFromString(encode_message_protobuf(message(docker_cgroup()))));
  EXPECT_EQ(e.event_payload().cgroup(), "/system.slice/docker-" + kId + ".scope");
  EXPECT_EQ(e.event_payload().cgroup_id(), 4242u);
  EXPECT_EQ(e.event_payload().container_id(), kId);
  EXPECT_EQ(e.event_payload().container_runtime(), "docker");
  EXPECT_EQ(e.event_payload().pid(), 10);  // the eCaptureQ fields are unchanged
}

TEST(CgroupOutput, Audit) {
  AuditEvent a;
  a.kind = "BASH";
  a.pid = a.tid = 99;
  a.comm = "bash";
  a.type = "command";
  a.text = "ls";
  a.cgroup = docker_cgroup();
  const std::string text = encode_audit_text(a, TextOptions{});
  EXPECT_NE(text.find(" comm=bash container=4f1d6c1e2a9b type=command "), std::string::npos)
      << text;
  auto j = nlohmann::json::parse(encode_audit_json(a));
  EXPECT_EQ(j["cgroup"], "/system.slice/docker-" + kId + ".scope");
  EXPECT_EQ(j["container_id"], kId);
  event::LogEntry e;
  ASSERT_TRUE(e.ParseFromString(encode_audit_protobuf(a)));
  EXPECT_EQ(e.event_payload().container_runtime(), "docker");
}

}  // namespace
}  // namespace ecapture
