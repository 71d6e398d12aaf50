// LiveRequests, the router's register of the requests running in it: what refuses a second
// request with a running id (before the ledger has recorded the first, too) and what Resume
// follows live. Real registry, no router around it.
#include <gtest/gtest.h>

#include <string>

#include "router/server/chat_pipeline.h"

namespace tidelane::server {
namespace {

bool Terminal(LiveRequests::Live& live) {
  std::lock_guard lock(live.mu);
  return live.terminal.has_value();
}

void Finish(LiveRequests::Live& live) {
  std::lock_guard lock(live.mu);
  live.terminal.emplace().mutable_done()->set_finish_reason("stop");
}

TEST(LiveRequests, ASecondStartOfARunningIdGetsTheRunningRecord) {
  LiveRequests live;
  auto [first, started] = live.Start("r1", "alice");
  ASSERT_TRUE(started);
  auto [again, started_again] = live.Start("r1", "alice");
  EXPECT_FALSE(started_again) << "two requests would stream into one record";
  EXPECT_EQ(again, first);
  EXPECT_EQ(again->owner, "alice") << "the refusal tells the owner apart from a stranger";
  // Resume finds the same running record and follows it.
  auto [followed, claimed] = live.Claim("r1", "alice");
  EXPECT_FALSE(claimed);
  EXPECT_EQ(followed, first);
}

TEST(LiveRequests, AFinishedIdMayStartAgainAndTheOldRequestsEndLeavesTheNewOne) {
  LiveRequests live;
  auto [first, started] = live.Start("r1", "alice");
  ASSERT_TRUE(started);
  Finish(*first);  // its Done has gone out; the request has not ended here yet
  auto [second, restarted] = live.Start("r1", "alice");
  ASSERT_TRUE(restarted) << "a retry after the answer is a new request";
  EXPECT_NE(second, first);
  // The first request ends after the retry started: the retry stays registered and running.
  live.End("r1", first);
  EXPECT_FALSE(Terminal(*second)) << "followers of the retry were told it was interrupted";
  auto [third, started_third] = live.Start("r1", "alice");
  EXPECT_FALSE(started_third) << "the retry runs, so the id is still taken";
  EXPECT_EQ(third, second);
  // Once the retry ends, the id is free and a follower of it got an end.
  live.End("r1", second);
  EXPECT_TRUE(Terminal(*second)) << "a follower would wait for ever";
  EXPECT_TRUE(live.Start("r1", "alice").second);
}

TEST(LiveRequests, ARequestThatEndsWithoutAnAnswerTellsItsFollowersItWasInterrupted) {
  LiveRequests live;
  auto [record, started] = live.Start("r1", std::nullopt);
  ASSERT_TRUE(started);
  live.End("r1", record);
  std::lock_guard lock(record->mu);
  ASSERT_TRUE(record->terminal.has_value());
  EXPECT_TRUE(record->terminal->has_error());
  EXPECT_NE(record->terminal->error().message().find("Resume"), std::string::npos);
}

}  // namespace
}  // namespace tidelane::server
