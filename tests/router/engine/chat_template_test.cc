// ChatTemplate: the Jinja features chat templates use, rendered as jinja2 renders them with
// Hugging Face's settings, and every error path (which must come back as an error naming the
// template position, never as a crash or a hang). Byte-for-byte agreement with jinja2 on the
// fixture templates is checked by tests/python/chat_template_test.py.
#include "router/engine/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace tidelane::engine {
namespace {

using jinja::Dict;
using jinja::Value;

constexpr std::int64_t kNow = 1721995200;  // 2024-07-26 12:00 UTC: the same date in all zones

Value Str(const char* s) {
  return Value::String(s);
}

Value Context() {
  Dict d;
  d.Set("xs", Value::List({Value::Int(3), Value::Int(1), Value::Int(4)}));
  Dict m;
  m.Set("role", Str("user"));
  m.Set("content", Str(" hi "));
  d.Set("msg", Value::MakeDict(m));
  d.Set("name", Str("Zoë"));
  d.Set("none_value", Value::None());
  return Value::MakeDict(std::move(d));
}

// Renders `source` with Context(); failures come back as "ERROR: <message>".
std::string R(std::string_view source, const Value& context = Context()) {
  const auto tpl = ChatTemplate::Parse(source);
  if (!tpl.ok()) return "ERROR: " + tpl.error();
  jinja::RenderOptions options;
  options.now_unix_seconds = kNow;
  const auto out = tpl->Render(context, options);
  return out.ok() ? out.value() : "ERROR: " + out.error();
}

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(TIDELANE_SHARED_DIR) + "/fixtures/templates/" + name,
                   std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(ChatTemplateTest, OutputAndLiterals) {
  EXPECT_EQ(R("Hello {{ name }}!"), "Hello Zoë!");
  EXPECT_EQ(R("{{ none_value }} {{ true }} {{ 1.0 }} {{ 1e16 }} {{ 1e15 }} {{ 0.00001 }}"),
            "None True 1.0 1e+16 1000000000000000.0 1e-05");
  EXPECT_EQ(R("{{ [1, 'a', none, (1,), {'k': \"it's\"}] }}"),
            "[1, 'a', None, (1,), {'k': \"it's\"}]");
  EXPECT_EQ(R("{{ 'a' 'b' }}{{ \"\\n\\t\\u00e9\\x41\\101\" }}"), "ab\n\téAA");
  EXPECT_EQ(R("{{ undefined_name }}|{{ msg.missing }}|{{ xs[10] }}"), "||");
}

TEST(ChatTemplateTest, OperatorsFollowPython) {
  EXPECT_EQ(R("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ -3 ** 2 }}"),
            "3 -4 2 3.5 1024 9");
  EXPECT_EQ(R("{{ 'ab' * 2 }} {{ [1] + [2] }} {{ 'a' ~ 1 ~ none }} {{ true + 1 }}"),
            "abab [1, 2] a1None 2");
  EXPECT_EQ(R("{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ (1, 2) == [1, 2] }} {{ 'b' in 'abc' }}"),
            "True True False True");
  EXPECT_EQ(R("{{ 'x' if xs else 'y' }} {{ 'y' if false }}| {{ none or 'z' }} {{ 0 and 1 }}"),
            "x | z 0");
  EXPECT_EQ(R("{{ 'role' in msg }} {{ 4 not in xs }} {{ not msg.missing }}"), "True False True");
}

TEST(ChatTemplateTest, SubscriptsAndSlices) {
  EXPECT_EQ(R("{{ xs[1:] }} {{ xs[::-1] }} {{ xs[-1] }} {{ xs.0 }}"), "[1, 4] [4, 1, 3] 4 3");
  EXPECT_EQ(R("{{ name[2] }} {{ name[::-1] }} {{ name|length }} {{ msg['role'] }}"),
            "ë ëoZ 3 user");
}

TEST(ChatTemplateTest, WhitespaceControlMatchesTrimAndLstripBlocks) {
  // trim_blocks drops the newline after a block tag; lstrip_blocks drops the indentation
  // before one; `-` strips all whitespace on its side; `+` turns lstrip off; `{{ }}` is
  // untouched by both; one trailing newline of the template goes.
  EXPECT_EQ(R("  {% if true %}\n    x\n  {% endif %}\n"), "    x\n");
  EXPECT_EQ(R("a  {%- if true -%}  b  {%- endif %}  c"), "ab  c");
  EXPECT_EQ(R("  {%+ if true %}k{% endif %}"), "  k");
  EXPECT_EQ(R("  {{ 'v' }}\n{# c #}\n  {# c #}\nend\n"), "  v\nend");
  EXPECT_EQ(R("{{ 'a' -}}\n\n  {{- 'b' }}"), "ab");
  EXPECT_EQ(R("x\r\ny\rz"), "x\ny\nz");
  EXPECT_EQ(R("{% raw %}{{ not rendered }}{% endraw %}"), "{{ not rendered }}");
  EXPECT_EQ(R("{{ {'a': 1}['a'] }}{{ {'b':2}}}"), "1{'b': 2}");
}

TEST(ChatTemplateTest, ForLoops) {
  EXPECT_EQ(R("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
              "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
            "103TrueFalse3;212FalseFalse3;321FalseTrue3;");
  EXPECT_EQ(R("{% for x in xs if x > 1 %}{{ x }}{{ loop.last }}{% endfor %}"), "3False4True");
  EXPECT_EQ(R("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(R("{% for k, v in msg.items() %}{{ k }}={{ v }};{% endfor %}"),
            "role=user;content= hi ;");
  EXPECT_EQ(R("{% for k in msg %}{{ k }}{% endfor %}{% for c in 'ab' %}{{ c }}{% endfor %}"),
            "rolecontentab");
  EXPECT_EQ(R("{% for i in range(10) %}{% if i == 1 %}{% continue %}{% endif %}"
              "{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
            "023");
  EXPECT_EQ(R("{% for x in xs %}{{ loop.previtem }}{{ loop.cycle('a', 'b') }}{% endfor %}"),
            "a3b1a");
}

TEST(ChatTemplateTest, SetInsideALoopStaysInTheLoopButNamespacesCarry) {
  EXPECT_EQ(R("{% set x = 0 %}{% for i in xs %}{{ x }}{% set x = i %}{% endfor %}{{ x }}"), "0000");
  EXPECT_EQ(R("{% set ns = namespace(total=0) %}{% for i in xs %}{% set ns.total = ns.total + i %}"
              "{% endfor %}{{ ns.total }}"),
            "8");
  EXPECT_EQ(R("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}"), "2");
  EXPECT_EQ(R("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t %}[{{ a }}]{% endset %}{{ t }}"),
            "12[1]");
  EXPECT_EQ(R("{% with y = 5 %}{{ y }}{% endwith %}{{ y }}"), "5");
}

TEST(ChatTemplateTest, MacrosAndCallBlocks) {
  EXPECT_EQ(R("{% macro m(a, b='B') %}{{ a }}{{ b }}{{ name }}{% endmacro %}{{ m(1) }} "
              "{{ m(1, b=2) }}"),
            "1BZoë 12Zoë");
  EXPECT_EQ(R("{% macro w() %}[{{ caller() }}]{% endmacro %}{% call w() %}in{% endcall %}"),
            "[in]");
  EXPECT_EQ(R("{% macro v() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ v(1, k=2) }}"),
            "(1,){'k': 2}");
  EXPECT_EQ(R("{% filter upper %}abc{% endfilter %}"), "ABC");
  // Hugging Face's {% generation %} marker renders its body.
  EXPECT_EQ(R("{% generation %}x{% endgeneration %}"), "x");
  EXPECT_EQ(R("{% macro m() %}{% set leaked = 1 %}{% endmacro %}{{ m() }}{{ leaked is defined }}"),
            "False");
}

TEST(ChatTemplateTest, Filters) {
  EXPECT_EQ(R("{{ msg.content|trim }}|{{ 'xhix'|trim('x') }}|{{ '\u3000a '|trim }}"), "hi|hi|a");
  EXPECT_EQ(R("{{ xs|join(',') }} {{ xs|first }} {{ xs|last }} {{ xs|length }} {{ xs|sum }} "
              "{{ xs|max }} {{ xs|min }} {{ xs|sort }} {{ xs|reverse|list }}"),
            "3,1,4 3 4 3 8 4 1 [1, 3, 4] [4, 1, 3]");
  EXPECT_EQ(R("{{ undefined_name|default('d') }} {{ ''|d('e', true) }} {{ 'A b'|lower }} "
              "{{ 'a b'|upper }} {{ 'a-b c'|title }} {{ 'aB'|capitalize }}"),
            "d e a b A B A-B C Ab");
  EXPECT_EQ(R("{{ 'a-b-c'|replace('-', '+', 1) }} {{ '42'|int }} {{ '3.7'|int }} {{ 'x'|int(5) }}"
              " {{ '2'|float }} {{ 2.5|round }} {{ 2.675|round(2) }} {{ -3|abs }}"),
            "a+b-c 42 3 5 2.0 2.0 2.67 3");
  EXPECT_EQ(R("{{ [msg, msg]|map(attribute='role')|list }} "
              "{{ [msg]|selectattr('role', 'equalto', 'user')|list|length }} "
              "{{ xs|reject('odd')|list }} {{ ['a', 'A', 'b']|unique|list }}"),
            "['user', 'user'] 1 [4] ['a', 'b']");
  EXPECT_EQ(R("{{ {'b': 1, 'a': 2}|dictsort }} {{ msg|items|list }}"),
            "[('a', 2), ('b', 1)] [('role', 'user'), ('content', ' hi ')]");
  EXPECT_EQ(R("{{ 'a\nb'|indent(2) }}|{{ 'one two'|wordcount }}|{{ xs|string }}|{{ 3|string }}"),
            "a\n  b|2|[3, 1, 4]|3");
}

TEST(ChatTemplateTest, ToJsonIsJsonDumpsWithoutAsciiEscaping) {
  EXPECT_EQ(R("{{ msg|tojson }}"), "{\"role\": \"user\", \"content\": \" hi \"}");
  EXPECT_EQ(R("{{ {'a': [1, 2.5, none, true], 'é': '\"\n'}|tojson }}"),
            "{\"a\": [1, 2.5, null, true], \"é\": \"\\\"\\n\"}");
  EXPECT_EQ(R("{{ {'b': [1], 'a': {}}|tojson(indent=2, sort_keys=true) }}"),
            "{\n  \"a\": {},\n  \"b\": [\n    1\n  ]\n}");
  EXPECT_EQ(R("{{ [1, 2]|tojson(separators=(',', ':')) }}"), "[1,2]");
  EXPECT_EQ(R("{{ 'é'|tojson(ensure_ascii=true) }}"), "\"\\u00e9\"");
}

TEST(ChatTemplateTest, TestsAndMethods) {
  EXPECT_EQ(R("{{ name is defined }}{{ nope is undefined }}{{ none_value is none }}"
              "{{ 1 is number }}{{ 1.0 is integer }}{{ msg is mapping }}{{ 'a' is string }}"
              "{{ xs is iterable }}{{ 3 is odd }}{{ 4 is even }}{{ 6 is divisibleby 3 }}"
              "{{ 'a' is in 'abc' }}{{ 1 is equalto 1 }}{{ true is true }}"),
            "TrueTrueTrueTrueFalseTrueTrueTrueTrueTrueTrueTrueTrueTrue");
  EXPECT_EQ(R("{{ ' a b '.strip() }}|{{ 'a,b'.split(',') }}|{{ ' a  b '.split() }}|"
              "{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'a'.upper() }}|"
              "{{ 'x</think>y'.split('</think>')[-1] }}|{{ msg.get('nope', 'd') }}|"
              "{{ msg.keys()|list }}|{{ '{} {}'.format(1, 'b') }}|{{ '%s=%d' % ('a', 1) }}"),
            "a b|['a', 'b']|['a', 'b']|True|True|A|y|d|['role', 'content']|1 b|a=1");
}

TEST(ChatTemplateTest, GlobalsRangeNamespaceDictStrftime) {
  EXPECT_EQ(R("{{ range(3)|list }} {{ range(1, 8, 3)|list }} {{ dict(a=1) }}"),
            "[0, 1, 2] [1, 4, 7] {'a': 1}");
  EXPECT_EQ(R("{{ strftime_now('%Y-%m-%d') }} {{ strftime_now is defined }}"), "2024-07-26 True");
  EXPECT_EQ(R("{% set ns = namespace() %}{% set ns.a = 'x' %}{{ ns.a }}{{ ns.b }}"), "x");
}

// --- errors ---------------------------------------------------------------------------------

std::string ParseError(std::string_view source) {
  const auto tpl = ChatTemplate::Parse(source);
  return tpl.ok() ? "parsed" : tpl.error();
}

TEST(ChatTemplateTest, SyntaxErrorsNameLineAndColumn) {
  EXPECT_EQ(ParseError("ab\n{% if %}"), "2:7: expected an expression, got end of statement block");
  EXPECT_EQ(ParseError("{% frobnicate %}"), "1:4: unknown tag 'frobnicate'");
  EXPECT_EQ(ParseError("{{ x|nofilter }}"), "1:6: no filter named 'nofilter'");
  EXPECT_EQ(ParseError("{{ x is notatest }}"), "1:9: no test named 'notatest'");
  EXPECT_EQ(ParseError("{{ x "), "1:1: unexpected end of template: missing '}}'");
  EXPECT_EQ(ParseError("{# open"), "1:1: missing end of comment tag");
  EXPECT_EQ(ParseError("{{ 'open }}"), "1:4: unexpected char '''");
  EXPECT_EQ(ParseError("{{ a $ b }}"), "1:6: unexpected char '$'");
  EXPECT_EQ(ParseError("{{ (a] }}"), "1:6: unexpected ']', expected ')'");
  EXPECT_EQ(ParseError("{% for x in xs %}"),
            "1:18: unexpected end of template, expected 'endfor' or 'else'");
  EXPECT_EQ(ParseError("{% break %}"), "1:4: 'break' outside loop");
  EXPECT_EQ(ParseError("{% include 'x' %}"),
            "1:4: tag 'include' is not supported in chat templates");
  EXPECT_EQ(ParseError("{{ '\\N{DASH}' }}"), "1:5: \\N{...} escapes are not supported");
  EXPECT_EQ(ParseError("{{ 99999999999999999999 }}"), "1:4: integer literal too large");
  EXPECT_EQ(ParseError("{% raw %}x"), "1:10: missing end of raw directive");
  EXPECT_EQ(ParseError("{% set true = 1 %}"), "1:8: can't assign to 'true'");
  EXPECT_EQ(ParseError("{{ x[:, 1] }}"), "1:6: slices inside a tuple subscript are not supported");
  EXPECT_EQ(ParseError("{% macro m(a=1, b) %}{% endmacro %}"),
            "1:18: non-default argument follows default argument");
}

TEST(ChatTemplateTest, NestingIsBoundedAtParseTime) {
  EXPECT_NE(ParseError("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}")
                .find("nested too deeply"),
            std::string::npos);
  std::string chain = "{{ 1";
  for (int i = 0; i < 5000; ++i) chain += "+1";
  EXPECT_NE(ParseError(chain + " }}").find("expression too complex"), std::string::npos);
  std::string blocks;
  for (int i = 0; i < 500; ++i) blocks += "{% if true %}";
  EXPECT_NE(ParseError(blocks).find("blocks nested too deeply"), std::string::npos);
  EXPECT_NE(ParseError("{{ " + std::string(5000, '-') + "1 }}").find("nested too deeply"),
            std::string::npos);
}

TEST(ChatTemplateTest, RuntimeErrorsComeBackAsResults) {
  EXPECT_EQ(R("line\n  {{ raise_exception('No system role') }}"), "ERROR: 2:21: No system role");
  EXPECT_EQ(R("{{ 1 + 'a' }}"), "ERROR: 1:6: unsupported operand type(s) for +: 'int' and 'str'");
  EXPECT_EQ(R("{{ nope.attr }}"), "ERROR: 1:4: 'nope' is undefined");
  EXPECT_EQ(R("{{ msg.missing.attr }}"),
            "ERROR: 1:7: undefined value (attribute 'missing') has no attribute 'attr'");
  EXPECT_EQ(R("{{ nope + 1 }}"), "ERROR: 1:4: 'nope' is undefined");
  EXPECT_EQ(R("{{ name() }}"), "ERROR: 1:8: 'str' object is not callable");
  EXPECT_EQ(R("{{ 1 // 0 }}"), "ERROR: 1:6: integer division or modulo by zero");
  EXPECT_EQ(R("{{ 1 < 'a' }}"),
            "ERROR: 1:4: '<' not supported between instances of 'int' and 'str'");
  EXPECT_EQ(R("{{ msg|tojson }}{{ nope|tojson }}"),
            "ERROR: 1:25: Object of type Undefined is not JSON serializable");
  EXPECT_EQ(R("{% set name.attr = 1 %}"),
            "ERROR: 1:4: cannot assign attribute on non-namespace object");
  EXPECT_EQ(R("{% set a, b = [1, 2, 3] %}"), "ERROR: 1:4: too many values to unpack (expected 2)");
  EXPECT_EQ(R("{% for x in 5 %}{% endfor %}"), "ERROR: 1:13: 'int' object is not iterable");
  EXPECT_EQ(R("{{ xs|join(1, 2, 3) }}"), "ERROR: 1:7: join takes at most 2 arguments (3 given)");
  EXPECT_EQ(R("{{ xs|sort(bogus=1) }}"), "ERROR: 1:7: sort got an unexpected argument 'bogus'");
  EXPECT_EQ(R("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}"),
            "ERROR: 1:35: macro 'm' takes not more than 1 argument(s)");
  EXPECT_EQ(R("{{ 9223372036854775807 + 1 }}"), "ERROR: 1:24: integer overflow");
  EXPECT_EQ(ChatTemplate::Parse("x")->Render(Value::List({})).error(),
            "the render context must be a mapping");
}

TEST(ChatTemplateTest, RunawayTemplatesHitLimitsInsteadOfHanging) {
  EXPECT_EQ(R("{{ range(1000000)|length }}"), "ERROR: 1:9: range too big (over 100000 items)");
  EXPECT_NE(R("{% for i in range(100000) %}{% for j in range(100) %}{% endfor %}{% endfor %}")
                .find("too many loop iterations"),
            std::string::npos);
  EXPECT_NE(R("{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}").find("output too large"),
            std::string::npos);
  EXPECT_NE(R("{{ 'x' * 100000000 }}").find("output too large"), std::string::npos);
  EXPECT_NE(R("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("too deep"),
            std::string::npos);
  EXPECT_NE(R("{% set ns = namespace(a=[]) %}{% for i in range(1000) %}{% set ns.a = [ns.a] %}"
              "{% endfor %}")
                .find("nested too deeply"),
            std::string::npos);
  EXPECT_NE(R("{% set ns = namespace(s='x') %}{% for i in range(100000) %}"
              "{% set ns.s = ns.s ~ ns.s[:1000] ~ 'y' * 10000 %}{% endfor %}")
                .find("too"),
            std::string::npos);
  // A namespace holding itself prints without recursing forever.
  EXPECT_EQ(R("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me is defined }}"), "True");
}

// --- the public chat API on real templates --------------------------------------------------

ChatTemplateInput Conversation() {
  ChatTemplateInput in;
  in.messages = {{"system", "You are terse.", {}}, {"user", "Hi", {}}};
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  in.now_unix_seconds = kNow;
  return in;
}

TEST(ChatTemplateTest, RendersQwenFixture) {
  const auto tpl = ChatTemplate::Parse(ReadFixture("Qwen-Qwen2.5-7B-Instruct.jinja"));
  ASSERT_TRUE(tpl.ok()) << tpl.error();
  const auto out = tpl->Render(Conversation());
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(out.value(),
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, RendersLlamaFixtureWithToolsAndDate) {
  const auto tpl = ChatTemplate::Parse(ReadFixture("meta-llama-Llama-3.2-3B-Instruct.jinja"));
  ASSERT_TRUE(tpl.ok()) << tpl.error();
  ChatTemplateInput in = Conversation();
  in.add_generation_prompt = false;
  const auto out = tpl->Render(in);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_EQ(out.value(),
            "<s><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
            "2023\nToday Date: 26 Jul 2024\n\nYou are terse.<|eot_id|><|start_header_id|>user"
            "<|end_header_id|>\n\nHi<|eot_id|>");
  Dict fn;
  fn.Set("name", Str("f"));
  Dict tool;
  tool.Set("function", Value::MakeDict(fn));
  in.tools = Value::List({Value::MakeDict(tool)});
  const auto with_tools = tpl->Render(in);
  ASSERT_TRUE(with_tools.ok()) << with_tools.error();
  EXPECT_NE(with_tools->find("\"function\": {\n        \"name\": \"f\"\n    }"), std::string::npos)
      << with_tools.value();
}

TEST(ChatTemplateTest, TemplatesThatRejectInputFailWithTheirMessage) {
  const auto gemma = ChatTemplate::Parse(ReadFixture("google-gemma-2-2b-it.jinja"));
  ASSERT_TRUE(gemma.ok()) << gemma.error();
  const auto out = gemma->Render(Conversation());
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().find("System role not supported"), std::string::npos) << out.error();

  ChatTemplateInput tool_call;
  tool_call.messages = {{"user", "q", {}}, {"assistant", std::nullopt, {}}};
  Dict call;
  call.Set("type", Str("function"));
  Dict fn;
  fn.Set("name", Str("f"));
  fn.Set("arguments", Str("{}"));
  call.Set("function", Value::MakeDict(fn));
  Dict fields;
  fields.Set("tool_calls", Value::List({Value::MakeDict(call)}));
  tool_call.messages[1].fields = Value::MakeDict(fields);
  const auto deepseek =
      ChatTemplate::Parse(ReadFixture("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"));
  ASSERT_TRUE(deepseek.ok()) << deepseek.error();
  const auto rendered = deepseek->Render(tool_call);
  ASSERT_TRUE(rendered.ok()) << rendered.error();
  EXPECT_NE(rendered->find("<｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n{}\n```"),
            std::string::npos)
      << rendered.value();
}

TEST(ChatTemplateTest, OneTemplateRendersFromManyThreads) {
  const auto tpl = ChatTemplate::Parse(ReadFixture("mistralai-Mistral-Nemo-Instruct-2407.jinja"));
  ASSERT_TRUE(tpl.ok()) << tpl.error();
  ChatTemplateInput in;
  in.messages = {{"user", "a", {}}, {"assistant", "b", {}}, {"user", "c", {}}};
  const std::string expected = tpl->Render(in).value();
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const ChatTemplate copy = tpl.value();  // copies share the parsed template
      for (int i = 0; i < 200; ++i) mismatches[t] += copy.Render(in).value() != expected;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(expected, "[INST]a[/INST]b[INST]c[/INST]");
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace tidelane::engine
