// A prepared SQLite statement, finalized on scope exit: the ledger's one way to run SQL.
// Not thread-safe: used under the ledger's connection mutex.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>

namespace tidelane::server {

class Stmt {
 public:
  // `persistent`: kept for the ledger's lifetime and reused by every commit.
  Stmt(sqlite3* db, const char* sql, bool persistent = false) {
    ok_ = sqlite3_prepare_v3(db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, &s_,
                             nullptr) == SQLITE_OK;
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return ok_; }
  Stmt& Text(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // NULL when absent.
  Stmt& Blob(int i, const std::optional<std::string>& v) {
    if (!v) {
      sqlite3_bind_null(s_, i);
      return *this;
    }
    return Blob(i, *v);
  }
  Stmt& Int(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(s_); }
  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::string ColumnText(int i) const {
    const auto* p = sqlite3_column_text(s_, i);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, i))
             : std::string();
  }
  std::string ColumnBlob(int i) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, i));
    return p ? std::string(p, sqlite3_column_bytes(s_, i)) : std::string();
  }
  std::int64_t ColumnInt(int i) const { return sqlite3_column_int64(s_, i); }
  std::optional<std::string> ColumnOptionalBlob(int i) const {
    if (sqlite3_column_type(s_, i) == SQLITE_NULL) return std::nullopt;
    return ColumnBlob(i);
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  bool ok_ = false;
};

}  // namespace tidelane::server
