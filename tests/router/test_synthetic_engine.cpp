// The synthetic engine answers deterministically, streams indices in order, honours
// max_tokens, resumes exactly where another instance stopped, and takes longer for
// longer prompts (its latency model), as the walking skeleton and failover rely on.
#include <QTest>

#include "router/core/node_profile.h"
#include "router/worker/synthetic_engine.h"

using namespace tidelane;
using worker::SyntheticEngine;

namespace {

std::vector<std::string> runAll(SyntheticEngine& e, const worker::GenerationInput& in,
                                std::vector<std::uint32_t>* indices = nullptr) {
  std::vector<std::string> out;
  e.Run(in, [&](std::uint32_t i, std::string_view t) {
    if (indices) indices->push_back(i);
    out.emplace_back(t);
    return true;
  });
  return out;
}

worker::GenerationInput input(const std::string& text) {
  worker::GenerationInput in{.request_id = std::string("r")};
  in.messages.push_back(worker::Message{"user", text});
  return in;
}

}  // namespace

class TestSyntheticEngine : public QObject {
  Q_OBJECT

 private slots:
  void sameConversationSameAnswerDifferentConversationDifferent() {
    SyntheticEngine e(*core::FindProfile("high"), 0);
    const auto a = runAll(e, input("hello"));
    QVERIFY(!a.empty());
    QCOMPARE(runAll(e, input("hello")), a);
    QVERIFY(runAll(e, input("goodbye")) != a);
  }

  void indicesCountFromZeroAndMaxTokensCaps() {
    SyntheticEngine e(*core::FindProfile("high"), 0);
    auto in = input("count please");
    in.max_tokens = 5;
    std::vector<std::uint32_t> idx;
    const auto out = runAll(e, in, &idx);
    QCOMPARE(out.size(), std::size_t{5});
    QCOMPARE(idx, (std::vector<std::uint32_t>{0, 1, 2, 3, 4}));
  }

  void resumeContinuesWithoutLossOrRepeat() {
    SyntheticEngine first(*core::FindProfile("high"), 0);
    SyntheticEngine second(*core::FindProfile("low"), 0);
    const auto whole = runAll(first, input("tell me about tides"));
    QVERIFY(whole.size() > 4);
    auto in = input("tell me about tides");
    in.generated.assign(whole.begin(), whole.begin() + 4);
    std::vector<std::uint32_t> idx;
    const auto rest = runAll(second, in, &idx);
    QCOMPARE(idx.front(), 4u);
    std::vector<std::string> joined(whole.begin(), whole.begin() + 4);
    joined.insert(joined.end(), rest.begin(), rest.end());
    QCOMPARE(joined, whole);
  }

  void conversationWithoutUserIsRefused() {
    SyntheticEngine e(*core::FindProfile("mid"), 0);
    worker::GenerationInput in;
    in.messages = {{"system", "be brief"}};
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, runAll(e, in));
  }

  void latencyModelGrowsWithPromptAndBatch() {
    const auto p = *core::FindProfile("low");
    QVERIFY(p.PrefillMs(2000) > p.PrefillMs(100));
    QVERIFY(p.DecodeStepMs(4) > p.DecodeStepMs(1));
    QVERIFY(core::FindProfile("high")->PrefillMs(1000) < p.PrefillMs(1000));
    QVERIFY(!core::FindProfile("enormous"));
  }
};

QTEST_GUILESS_MAIN(TestSyntheticEngine)
#include "test_synthetic_engine.moc"
