// The .proto contract survives a round trip through the wire format, and the bearer-token
// helpers accept exactly the right token and refuse unsafe token files.
#include <sys/stat.h>

#include <QFile>
#include <QTemporaryDir>
#include <QTest>
#include <fstream>

#include "router/proto/auth.h"
#include "tidelane/v1/chat.pb.h"
#include "tidelane/v1/registry.pb.h"

using namespace tidelane;

class TestProtocol : public QObject {
  Q_OBJECT

 private slots:
  void everyChatEventKindRoundTrips() {
    std::vector<v1::ChatEvent> events(7);
    events[0].mutable_accepted()->set_queue_position(42);
    events[0].mutable_accepted()->set_eta_ms(1500);
    events[1].mutable_routed()->set_node("gpu-0");
    events[1].mutable_routed()->set_lane(v1::LANE_DECODE);
    events[2].mutable_token()->set_index(7);
    events[2].mutable_token()->set_text(" wave \xF0\x9F\x8C\x8A");
    events[3].mutable_redirected()->set_from_node("a");
    events[3].mutable_redirected()->set_to_node("b");
    events[3].mutable_redirected()->set_resume_index(12);
    events[4].mutable_degraded()->set_max_tokens(64);
    events[5].mutable_done()->mutable_usage()->set_completion_tokens(30);
    events[5].mutable_done()->mutable_timings()->set_ttft_ms(123.5);
    events[6].mutable_error()->set_code(v1::ERROR_CODE_OVERLOADED);
    events[6].mutable_error()->set_retry_after_ms(2000);
    for (auto& e : events) {
      e.set_request_id("req-1");
      const std::string wire = e.SerializeAsString();
      v1::ChatEvent back;
      QVERIFY(back.ParseFromString(wire));
      QCOMPARE(back.event_case(), e.event_case());
      QCOMPARE(back.SerializeAsString(), wire);
    }
  }

  void truncatedMessageIsRejectedNotMisread() {
    v1::WorkerMessage m;
    m.mutable_register_()->set_name("worker-with-a-long-name");
    m.mutable_register_()->set_address("127.0.0.1:5000");
    const std::string wire = m.SerializeAsString();
    v1::WorkerMessage back;
    QVERIFY(!back.ParseFromString(wire.substr(0, wire.size() - 3)));
  }

  void constantTimeEqualsComparesWholeTokens() {
    QVERIFY(auth::ConstantTimeEquals("abc123", "abc123"));
    QVERIFY(!auth::ConstantTimeEquals("abc123", "abc124"));
    QVERIFY(!auth::ConstantTimeEquals("abc123", "abc12"));
    QVERIFY(!auth::ConstantTimeEquals("", "x"));
  }

  void tokenFileIsTrimmedAndMustBePrivate() {
    QTemporaryDir dir;
    const std::string path = dir.filePath("token").toStdString();
    std::ofstream(path) << "  s3cret-token \n second line ignored\n";
    ::chmod(path.c_str(), 0600);
    QCOMPARE(auth::ReadTokenFile(path), std::string("s3cret-token"));

    ::chmod(path.c_str(), 0644);
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, auth::ReadTokenFile(path));

    const std::string empty = dir.filePath("empty").toStdString();
    std::ofstream(empty) << "\n";
    ::chmod(empty.c_str(), 0600);
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, auth::ReadTokenFile(empty));
    QVERIFY_THROWS_EXCEPTION(std::runtime_error,
                             auth::ReadTokenFile(dir.filePath("missing").toStdString()));
  }
};

QTEST_GUILESS_MAIN(TestProtocol)
#include "test_protocol.moc"
