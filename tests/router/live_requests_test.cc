// LiveRequests, the router's register of the requests running in it: what refuses a second
// request with an id in use (its owner's retry before the ledger has recorded the first, too)
// and what Resume follows live. Real registry, no router around it.
#include <gtest/gtest.h>

#include <string>

#include "router/server/chat_pipeline.h"

namespace tidelane::server {
namespace {

using Refusal = LiveRequests::Refusal;

bool Terminal(LiveRequests::Live& live) {
  std::lock_guard lock(live.mu);
  return live.terminal.has_value();
}

void Finish(LiveRequests::Live& live) {
  std::lock_guard lock(live.mu);
  live.terminal.emplace().mutable_done()->set_finish_reason("stop");
}

// A request the ledger has recorded: started, then Recorded.
std::shared_ptr<LiveRequests::Live> Running(LiveRequests& live, const std::string& id,
                                            const std::string& owner) {
  auto start = live.StartNew(id, owner, /*recorded=*/false);
  EXPECT_EQ(start.refusal, Refusal::kNone);
  live.Recorded(id, start.record);
  return start.record;
}

TEST(LiveRequests, ARunningIdIsRefusedToEveryoneAndResumeFollowsIt) {
  LiveRequests live;
  const auto first = Running(live, "r1", "alice");
  const auto again = live.StartNew("r1", "alice", false);
  EXPECT_EQ(again.refusal, Refusal::kOwn) << "two answers would stream into one record";
  EXPECT_EQ(again.record, nullptr);
  EXPECT_EQ(live.StartNew("r1", "bob", false).refusal, Refusal::kInUse);
  auto [followed, claimed] = live.Claim("r1", "alice");
  EXPECT_FALSE(claimed);
  EXPECT_EQ(followed, first);
}

TEST(LiveRequests, AnOwnersRetryIsRefusedWhileTheFirstIsBeingRecorded) {
  LiveRequests live;
  const auto first = live.StartNew("r1", "alice", false);
  ASSERT_EQ(first.refusal, Refusal::kNone);
  EXPECT_EQ(live.StartNew("r1", "alice", false).refusal, Refusal::kOwn)
      << "the retry would replace the first one's record while the first one answers";
  // Recorded: still refused; ended: free.
  live.Recorded("r1", first.record);
  EXPECT_EQ(live.StartNew("r1", "alice", false).refusal, Refusal::kOwn);
  live.End("r1", first.record);
  EXPECT_EQ(live.StartNew("r1", "alice", false).refusal, Refusal::kNone);
}

TEST(LiveRequests, AStrangersStartBeingRecordedHoldsNothingOfTheOwners) {
  LiveRequests live;
  // Bob sends alice's id; the ledger will refuse him, but has not answered yet.
  const auto bob = live.StartNew("r1", "bob", false);
  ASSERT_EQ(bob.refusal, Refusal::kNone);
  // Alice's own retry goes on to the ledger, which knows the id is hers.
  const auto alice = live.StartNew("r1", "alice", false);
  EXPECT_EQ(alice.refusal, Refusal::kNone) << "a stranger held the owner's id by sending it";
  // Alice's Resume does not follow bob's request.
  auto [record, claimed] = live.Claim("r1", "alice");
  EXPECT_TRUE(claimed);
  EXPECT_NE(record, bob.record);
  live.End("r1", record);
  // Bob refused by the ledger, alice recorded: alice's runs, bob's end leaves it.
  live.End("r1", bob.record);
  live.Recorded("r1", alice.record);
  EXPECT_EQ(live.StartNew("r1", "alice", false).refusal, Refusal::kOwn);
  EXPECT_FALSE(Terminal(*alice.record));
}

TEST(LiveRequests, AFinishedIdMayStartAgainAndTheOldRequestsEndLeavesTheNewOne) {
  LiveRequests live;
  const auto first = Running(live, "r1", "alice");
  Finish(*first);  // its Done has gone out; the request has not ended here yet
  const auto second = Running(live, "r1", "alice");
  ASSERT_NE(second, first);
  // The first request ends after the retry started: the retry stays registered and running.
  live.End("r1", first);
  EXPECT_FALSE(Terminal(*second)) << "followers of the retry were told it was interrupted";
  EXPECT_EQ(live.StartNew("r1", "alice", false).refusal, Refusal::kOwn);
  auto [followed, claimed] = live.Claim("r1", "alice");
  EXPECT_FALSE(claimed);
  EXPECT_EQ(followed, second);
  // Once the retry ends, the id is free and a follower of it got an end.
  live.End("r1", second);
  EXPECT_TRUE(Terminal(*second)) << "a follower would wait for ever";
  EXPECT_EQ(live.StartNew("r1", "alice", false).refusal, Refusal::kNone);
}

TEST(LiveRequests, WithoutALedgerARequestIsFollowedFromItsStart) {
  LiveRequests live;
  const auto start = live.StartNew("r1", std::nullopt, /*recorded=*/true);
  ASSERT_EQ(start.refusal, Refusal::kNone);
  auto [followed, claimed] = live.Claim("r1", std::nullopt);
  EXPECT_FALSE(claimed);
  EXPECT_EQ(followed, start.record);
  EXPECT_EQ(live.StartNew("r1", std::nullopt, true).refusal, Refusal::kOwn);
}

TEST(LiveRequests, ARequestThatEndsWithoutAnAnswerTellsItsFollowersItWasInterrupted) {
  LiveRequests live;
  const auto record = Running(live, "r1", "alice");
  live.End("r1", record);
  std::lock_guard lock(record->mu);
  ASSERT_TRUE(record->terminal.has_value());
  EXPECT_TRUE(record->terminal->has_error());
  EXPECT_NE(record->terminal->error().message().find("Resume"), std::string::npos);
}

}  // namespace
}  // namespace tidelane::server
