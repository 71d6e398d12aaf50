#!/usr/bin/env python3
"""Chat templates: the engine's renderer against Python's jinja2, byte for byte.

Usage: chat_template_test.py RENDER_TEMPLATE_BINARY TEMPLATES_DIR

The reference is jinja2 set up as Hugging Face transformers sets it up for
apply_chat_template (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
its own tojson, raise_exception and strftime_now), rendered with the context transformers
builds (messages, tools, documents, add_generation_prompt, bos_token, eos_token, extras).
Every template in TEMPLATES_DIR is rendered with every sample conversation, and a set of
feature snippets with a generic context; each output must match exactly, and where jinja2
raises (a template rejecting a system message, say) the engine must fail too.
"""
import copy
import difflib
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

NOW = 1721995200  # 2024-07-26 12:00:00 UTC; strftime_now formats this on both sides


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.fromtimestamp(NOW).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Zürich"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7.5},
            },
            "required": ["city"],
        },
        "return": {"type": "string"},
    },
}


def tool_conversation(arguments):
    return [
        {"role": "system", "content": "You can look up the weather."},
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call12345", "type": "function",
             "function": {"name": "get_weather", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
         "content": "{\"temperature\": 21, \"sky\": \"sunny\"}"},
        {"role": "assistant", "content": "It is 21 °C and sunny in Paris."},
        {"role": "user", "content": "Thanks!"},
    ]


# (name, messages, extra context); each runs with add_generation_prompt true and false.
CONVERSATIONS = [
    ("system_user", [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello, who are you?"},
    ], {}),
    ("user_only", [{"role": "user", "content": "Write a haiku about the sea."}], {}),
    ("multi_turn", [
        {"role": "system", "content": "  Be brief.  \n"},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
        {"role": "user", "content": "Thanks.\n\n"},
    ], {}),
    ("multi_turn_no_system", [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": " Hello! How can I help? "},
        {"role": "user", "content": "Tell me a joke."},
    ], {}),
    ("non_ascii", [
        {"role": "system", "content": "\u3000Réponds en français, s'il te plaît.\u00a0"},
        {"role": "user", "content": "Grüße aus Zürich! 你好，世界 🚀 naïve „quotes“ — \"double\" 'single'"},
        {"role": "assistant", "content": "Bonjour ! 😀\tÇa va ?"},
        {"role": "user", "content": "日本語で答えて\u2028ください。"},
    ], {}),
    ("template_lookalike", [
        {"role": "user", "content": "Print {{ messages }} and {% if x %} literally, \\n too."},
    ], {}),
    ("empty_content", [{"role": "user", "content": ""}], {}),
    ("tools_dict_arguments", tool_conversation({"city": "Paris", "unit": "celsius"}),
     {"tools": [WEATHER_TOOL]}),
    ("tools_string_arguments", tool_conversation("{\"city\": \"Paris\"}"),
     {"tools": [WEATHER_TOOL]}),
    ("tools_no_system", tool_conversation({"city": "Paris"})[1:], {"tools": [WEATHER_TOOL]}),
    ("tools_in_system_prompt", tool_conversation({"city": "Paris"}),
     {"tools": [WEATHER_TOOL], "tools_in_user_message": False}),
    ("tool_content_mapping", [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "abcdefghi", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "tool_call_id": "abcdefghi", "content": {"content": {"t": -3.5}}},
    ], {}),
    ("date_string", [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "What day is it?"},
    ], {"date_string": "01 Jan 2025"}),
    ("system_only", [{"role": "system", "content": "Only a system prompt."}], {}),
    ("not_alternating", [
        {"role": "user", "content": "One"},
        {"role": "user", "content": "Two"},
    ], {}),
    ("think_tags", [
        {"role": "user", "content": "Solve it."},
        {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nThe answer is 42."},
        {"role": "user", "content": "Sure?"},
    ], {}),
]

TOKENS = [("<s>", "</s>"), ("<|begin_of_text|>", "<|eot_id|>"), ("", "")]

# Feature snippets beyond what the fixture templates use, rendered with SNIPPET_CONTEXT.
SNIPPETS = [
    "{% for m in messages %}{{ loop.index }}/{{ loop.length }} {{ m.role|upper }}:{{ m.content|trim }}{% if not loop.last %}, {% endif %}{% endfor %}",
    "{% for x in xs if x is odd %}{{ x }}{{ loop.cycle('a', 'b') }}{{ loop.revindex }}{% else %}none{% endfor %}",
    "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}|{% for k, v in d|dictsort %}{{ k }}={{ v }};{% endfor %}",
    "{% set ns = namespace(n=0, s='') %}{% for x in xs %}{% set ns.n = ns.n + x %}{% set ns.s = ns.s ~ x %}{% endfor %}{{ ns.n }} {{ ns.s }}",
    "{% set x = 1 %}{% for i in xs %}{% set x = i %}{% endfor %}{{ x }}",
    "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 5 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', greeting='Hi') }}",
    "{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inside {{ xs|length }}{% endcall %}",
    "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1e16 }} {{ 0.1 + 0.2 }} {{ 1.5e-7 }} {{ 10 / 4 }} {{ 3 * 'ab' }}",
    "{{ 'a' ~ 1 ~ none ~ true }} {{ [1, 'x', none, (1,), {'k': 'v'}] }} {{ {'a': [1.0, 2]} }} {{ \"it's\" }} {{ ['it\\'s', 'q\"'] }}",
    "{{ xs[1:] }} {{ xs[::-1] }} {{ xs[-1] }} {{ 'héllo'[1:3] }} {{ 'héllo'[::-1] }} {{ xs[10] }}|{{ 'abc'[5] }}|",
    "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}",
    "{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x', 'lo')) }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'a-b'.replace('-', '+') }} {{ 'abcabc'.find('c') }} {{ 'abcabc'.count('b') }}",
    "{{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.keys()|list }} {{ d.values()|list }} {% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %}",
    "{{ xs|join(', ') }}|{{ xs|first }}|{{ xs|last }}|{{ xs|length }}|{{ xs|sum }}|{{ xs|max }}|{{ xs|min }}|{{ xs|reverse|list }}|{{ xs|sort(reverse=true) }}",
    "{{ messages|map(attribute='role')|join(',') }}|{{ messages|selectattr('role', 'equalto', 'user')|list|length }}|{{ messages|rejectattr('role', 'eq', 'user')|map(attribute='content')|list }}",
    "{{ ['b', 'A', 'a', 'B']|unique|list }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} {{ xs|select('even')|list }} {{ xs|reject('odd')|list }}",
    "{{ d|tojson }} {{ d|tojson(indent=2) }} {{ d|tojson(sort_keys=true) }} {{ 'üñí \"q\" \\n'|tojson }} {{ [1.5, none, true, 3]|tojson }} {{ {}|tojson(indent=4) }} {{ []|tojson }}",
    "{{ d|tojson(separators=(',', ':')) }} {{ messages[0]|tojson(indent=2) }}",
    "{{ s|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'one two  three'|wordcount }}|{{ 'hello wORLD'|title }}|{{ 'hello'|capitalize }}",
    "{{ '42'|int }} {{ '3.7'|int }} {{ 3.9|int }} {{ 'x'|int(7) }} {{ '12'|float }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 7|round }} {{ -2.5|abs }} {{ 3.14159|round(2, 'floor') }}",
    "{{ undefined_var }}|{{ undefined_var|default('dflt') }}|{{ ''|default('empty', true) }}|{{ undefined_var is defined }}|{{ none is none }}|{{ d.nope is undefined }}|{{ undefined_var|length }}",
    "{{ 1 is number }}{{ true is number }}{{ 1.0 is integer }}{{ 'x' is string }}{{ d is mapping }}{{ xs is iterable }}{{ 's' is sequence }}{{ 3 is divisibleby 3 }}{{ 'a' is in 'cat' }}{{ 4 is even }}",
    "{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ (1, 2) == [1, 2] }} {{ 'b' > 'a' }} {{ [1, 2] < [1, 3] }} {{ 'x' in xs }} {{ 2 in xs }} {{ 'a' not in d }} {{ not true or false and true }}",
    "{{ 'yes' if xs else 'no' }} {{ 'y' if none }}| {{ none or 'fallback' }} {{ 0 and 'never' }} {{ -xs[0] }} {{ -3 ** 2 }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }} {% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %} {% set t %}block {{ a }}{% endset %}{{ t }}",
    "{% filter upper %}shout {{ xs|length }}{% endfilter %} {% with y = 5 %}{{ y * 2 }}{% endwith %}{{ y }}",
    "  {% if true %}\n    indented\n  {% endif %}\n{%- if true %}  stripped  {% endif -%}\n  x  {%+ if true %}kept{% endif %}\n{# comment #}\n  {# indented comment #}\nafter\n",
    "{% raw %}{{ not rendered }}{% endraw %}\n  {%- raw -%}  {% also %}  {%- endraw %} done",
    "{{ 'line1\nline2' }}\n{{- ' joined' }}\n\n  {{ 'spaces kept before var' }}\n{%- for x in xs %}\n  - {{ x }}\n{% endfor %}\n",
    "{{ '%s has %d items' % ('list', 3) }} {{ '{} and {}'.format('a', 'b') }} {{ '%s!'|format('hey') }} {{ 'a\\tb\\u00e9\\x41\\101' }}",
    "{{ strftime_now('%Y-%m-%d %H:%M %b %A') }} {{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ dict(a=1, b='x') }}",
    "{{ xs|batch(2)|list }} {{ 'AbC'|lower }} {{ 'AbC'|upper }} {{ d|items|list }} {{ 'a<b>&\"'|e }} {{ [3, 1, 2]|sort|first }}",
    "{% if messages[0].role == 'system' %}{{ raise_exception('no system messages: ' ~ messages[0].content) }}{% endif %}",
    "{{ xs + 'a' }}",
    "{{ undefined_var.attr }}",
    "{{ d.a.b.c }}",
    "{{ range(1000000)|length }}",
    "{{ 'straße'|upper }} {{ 'ÀÉÎ ΑΒΓ ДЖЁ'|lower }} {{ 'élan vital-ñu'|title }} {{ 'ÉCOLE ÿ'|capitalize }} {{ 'çava ıi'.upper() }} {{ 'hÉllo wörld'.title() }}",
    "{% if true %}\n  a\n{% endif %}\n  {% for x in xs %}\n    {{ x }}\n  {% endfor %}\n{%- if false %}{% elif true %}e{% else %}x{% endif +%}\n tail",
    "\t{% set y = 1 -%}\n\n{{ y }}{#- c -#}  \n  {{- y }} {% if y %}\r\n  yes\r\n{% endif %}{{ '\\u00e9' }}",
    "{% for x in xs %}{{ x }}{% endfor %}{{ xs|map('string')|join('-') }} {{ xs|map('int')|sum }} {{ 'é'|length }} {{ 'é'|upper }}{{ 'Ab'|upper }}",
]

SNIPPET_CONTEXT = {
    "messages": [
        {"role": "system", "content": "Be nice."},
        {"role": "user", "content": " Hi there "},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ],
    "xs": [3, 1, 4, 1, 5, 9, 2, 6],
    "d": {"b": 2, "a": [1, "ü", None, True, 2.5], "c": {"x": "y"}},
    "s": "\u3000 padded text \t\n",
}


class Runner:
    def __init__(self, binary):
        self.binary = binary
        self.env = make_env()
        self.tmp = tempfile.mkdtemp(prefix="chat_template_test_")
        self.matched = 0
        self.both_failed = 0
        self.failures = []

    def reference(self, source, context):
        try:
            return self.env.from_string(source).render(**context), None
        except Exception as e:  # any jinja2 error: the engine must fail as well
            return None, f"{type(e).__name__}: {e}"

    def engine(self, template_path, context):
        ctx_path = os.path.join(self.tmp, "context.json")
        with open(ctx_path, "w", encoding="utf-8") as f:
            json.dump(context, f, ensure_ascii=False)
        proc = subprocess.run([self.binary, template_path, ctx_path, str(NOW)],
                              capture_output=True, timeout=60)
        if proc.returncode == 0:
            return proc.stdout.decode("utf-8"), None
        if proc.returncode != 1:
            return None, f"CRASH or bad usage (exit {proc.returncode}): {proc.stderr!r}"
        return None, proc.stderr.decode("utf-8", "replace").strip()

    def compare(self, label, source, template_path, context):
        want, want_err = self.reference(source, context)
        got, got_err = self.engine(template_path, context)
        if want_err is not None and got_err is not None and not got_err.startswith("CRASH"):
            self.both_failed += 1
            return
        if want_err is None and got_err is None and want == got:
            self.matched += 1
            return
        lines = [f"FAIL {label}"]
        if want_err is not None:
            lines.append(f"  jinja2 raised {want_err}; engine rendered {got!r}" if got_err is None
                         else f"  jinja2 raised {want_err}; engine: {got_err}")
        elif got_err is not None:
            lines.append(f"  engine failed: {got_err}")
        else:
            diff = difflib.unified_diff(want.splitlines(keepends=True),
                                        got.splitlines(keepends=True), "jinja2", "engine")
            lines.extend("  " + repr(l) for l in diff)
        self.failures.append("\n".join(lines))


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    binary, templates_dir = sys.argv[1], sys.argv[2]
    runner = Runner(binary)
    names = sorted(n for n in os.listdir(templates_dir) if n.endswith(".jinja"))
    if not names:
        print(f"no templates in {templates_dir}")
        return 1
    renders_per_template = {}
    for name in names:
        path = os.path.join(templates_dir, name)
        with open(path, encoding="utf-8") as f:
            source = f.read()
        before = runner.matched
        for conv_name, messages, extra in CONVERSATIONS:
            for bos, eos in TOKENS:
                for agp in (True, False):
                    context = {"messages": copy.deepcopy(messages), "tools": None,
                               "documents": None, "add_generation_prompt": agp,
                               "bos_token": bos, "eos_token": eos}
                    context.update(copy.deepcopy(extra))
                    runner.compare(f"{name} / {conv_name} / bos={bos!r} / agp={agp}",
                                   source, path, context)
        renders_per_template[name] = runner.matched - before
    template_cases = runner.matched + runner.both_failed
    for i, snippet in enumerate(SNIPPETS):
        path = os.path.join(runner.tmp, f"snippet{i}.jinja")
        with open(path, "w", encoding="utf-8") as f:
            f.write(snippet)
        runner.compare(f"snippet {i}: {snippet[:60]!r}", snippet, path,
                       copy.deepcopy(SNIPPET_CONTEXT))
    for failure in runner.failures:
        print(failure)
    total = runner.matched + runner.both_failed + len(runner.failures)
    print(f"{len(names)} templates x {len(CONVERSATIONS) * len(TOKENS) * 2} cases "
          f"+ {len(SNIPPETS)} snippets: {total} comparisons, {runner.matched} identical "
          f"outputs, {runner.both_failed} raised in both, {len(runner.failures)} mismatches")
    for name, n in renders_per_template.items():
        print(f"  {name}: {n} identical outputs")
        if n == 0:
            print(f"FAIL {name}: no case rendered at all")
            return 1
    del template_cases
    return 1 if runner.failures else 0


if __name__ == "__main__":
    sys.exit(main())
