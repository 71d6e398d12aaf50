// jinja::Value: the data a chat template sees — a JSON-like value with Python's semantics,
// because the reference renderer (Hugging Face transformers) is Python's jinja2 and a template
// must print byte-for-byte what it prints there.
//
// Kinds: undefined (jinja2's default Undefined: prints as "", is falsy, iterates as empty, and
// fails when used as a number or has its attributes read), none, bool, int (64-bit), float,
// string (UTF-8 bytes), list (a tuple is a list flagged `tuple`, printed as `(1, 2)`), dict
// (string keys, insertion order, as Python 3 dicts), and object (a namespace, macro or builtin
// function; objects exist only while one render runs and are owned by it).
//
// Ownership: lists and dicts are immutable once built and shared between copies, so copying a
// Value is cheap for them. Strings are held by value.
// Threading: a Value is immutable (except objects, which are private to one render); const
// Values may be shared between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tidelane::engine::jinja {

class Value;
class Dict;
struct Object;

namespace detail {
struct ListData;
struct DictData;
}  // namespace detail

class Value {
 public:
  enum class Kind : std::uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kObject
  };

  Value() = default;  // undefined
  static Value None() { return Value(Storage(std::in_place_index<1>, nullptr)); }
  static Value Bool(bool b) { return Value(Storage(std::in_place_index<2>, b)); }
  static Value Int(std::int64_t i) { return Value(Storage(std::in_place_index<3>, i)); }
  static Value Float(double d) { return Value(Storage(std::in_place_index<4>, d)); }
  static Value String(std::string s) {
    return Value(Storage(std::in_place_index<5>, std::move(s)));
  }
  static Value List(std::vector<Value> items, bool tuple = false);
  static Value MakeDict(Dict dict);
  static Value MakeObject(Object* object) { return Value(Storage(std::in_place_index<8>, object)); }

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  // Python's numbers: bool is an int there, so True + 1 == 2.
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_tuple() const;
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_object() const { return kind() == Kind::kObject; }

  // Accessors; each requires the matching kind.
  bool as_bool() const { return std::get<2>(v_); }
  std::int64_t as_int() const { return is_bool() ? std::get<2>(v_) : std::get<3>(v_); }  // bool too
  double as_float() const;  // any number
  const std::string& as_string() const { return std::get<5>(v_); }
  const std::vector<Value>& as_list() const;
  const Dict& as_dict() const;
  Object* as_object() const { return std::get<8>(v_); }

  // How many lists/dicts deep this value nests (0 for scalars); renderers bound it so that
  // printing and destroying values cannot exhaust the stack.
  int depth() const;

 private:
  using Storage = std::variant<std::monostate, std::nullptr_t, bool, std::int64_t, double,
                               std::string, std::shared_ptr<const detail::ListData>,
                               std::shared_ptr<const detail::DictData>, Object*>;
  explicit Value(Storage v) : v_(std::move(v)) {}

  Storage v_;
};

// Insertion-ordered string-keyed map, as Python dicts are.
class Dict {
 public:
  using Item = std::pair<std::string, Value>;

  const Value* Find(std::string_view key) const;
  // Replaces the value of an existing key in place (keeping its position) or appends.
  void Set(std::string key, Value value);
  const std::vector<Item>& items() const { return items_; }
  std::size_t size() const { return items_.size(); }

 private:
  std::vector<Item> items_;
};

// A namespace (mutable attributes, set with `{% set ns.attr = ... %}`) or a callable (macro,
// builtin function, bound method). The renderer creates objects, owns them for one render,
// and derives from this for its callables; Values hold non-owning pointers to them.
struct Object {
  enum class Kind : std::uint8_t { kNamespace, kCallable };
  explicit Object(Kind k, std::string n = {}) : kind(k), name(std::move(n)) {}
  virtual ~Object() = default;
  Kind kind;
  std::string name;  // a callable's name, for messages and printing
  Dict attributes;   // a namespace's attributes
};

namespace detail {
struct ListData {
  std::vector<Value> items;
  bool tuple = false;
  int depth = 1;
};
struct DictData {
  Dict dict;
  int depth = 1;
};
}  // namespace detail

inline bool Value::is_tuple() const {
  return is_list() && std::get<6>(v_)->tuple;
}
inline const std::vector<Value>& Value::as_list() const {
  return std::get<6>(v_)->items;
}
inline const Dict& Value::as_dict() const {
  return std::get<7>(v_)->dict;
}

// Python's truth value (undefined is false; objects are true).
bool Truthy(const Value& v);
// Python's str() of the value as jinja2 prints it: undefined prints "", none "None",
// floats as repr() does ("1.0", "1e+16"), containers as their repr().
std::string ToPython(const Value& v);
// Python's repr(): strings quoted and escaped as CPython does.
std::string Repr(const Value& v);
// Python's ==: numbers compare across int/float/bool, lists and tuples never equal each other,
// containers compare deeply, objects by identity, undefined equals only undefined.
bool Equals(const Value& a, const Value& b);
// Python type name for messages ("str", "int", "dict", ...).
std::string_view TypeName(const Value& v);
// CPython's float repr: shortest round-trip digits, exponent form outside 1e-4 <= |x| < 1e16.
std::string FloatRepr(double d);

}  // namespace tidelane::engine::jinja
