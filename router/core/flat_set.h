// FlatSet: a set of 64-bit hashes in one open-addressed array (linear probing, at most half
// full), so a membership test is usually a single cache line, where std::unordered_set chases
// a bucket pointer and a node. Used on the routing hot path for "does this node hold block b".
// Keys are already well-mixed hashes; 0 and 1 mark empty and erased slots, so the two keys 0
// and 1 are stored as if they were 2^63 and 2^63 + 1 (an accepted, vanishing ambiguity).
//
// Threading: not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

namespace tidelane::core {

class FlatSet {
 public:
  bool Contains(std::uint64_t key) const {
    if (slots_.empty()) return false;
    const std::uint64_t k = Stored(key);
    for (std::size_t i = Home(k);; i = (i + 1) & mask_) {
      if (slots_[i] == k) return true;
      if (slots_[i] == kEmpty) return false;
    }
  }

  void Insert(std::uint64_t key) {
    if ((used_ + 1) * 2 > slots_.size()) Rehash(slots_.empty() ? 16 : slots_.size() * 2);
    const std::uint64_t k = Stored(key);
    std::size_t tomb = SIZE_MAX;
    for (std::size_t i = Home(k);; i = (i + 1) & mask_) {
      if (slots_[i] == k) return;
      if (slots_[i] == kErased && tomb == SIZE_MAX) tomb = i;
      if (slots_[i] == kEmpty) {
        if (tomb != SIZE_MAX) {
          slots_[tomb] = k;
          --erased_;
        } else {
          slots_[i] = k;
          ++used_;
        }
        ++size_;
        return;
      }
    }
  }

  void Erase(std::uint64_t key) {
    if (slots_.empty()) return;
    const std::uint64_t k = Stored(key);
    for (std::size_t i = Home(k);; i = (i + 1) & mask_) {
      if (slots_[i] == k) {
        slots_[i] = kErased;
        ++erased_;
        --size_;
        if (erased_ * 4 > slots_.size()) Rehash(slots_.size());
        return;
      }
      if (slots_[i] == kEmpty) return;
    }
  }

  std::size_t Size() const { return size_; }

 private:
  static constexpr std::uint64_t kEmpty = 0;
  static constexpr std::uint64_t kErased = 1;
  static std::uint64_t Stored(std::uint64_t key) { return key < 2 ? key | (1ull << 63) : key; }
  std::size_t Home(std::uint64_t k) const {
    return static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void Rehash(std::size_t capacity) {
    std::vector<std::uint64_t> old;
    old.swap(slots_);
    slots_.assign(capacity, kEmpty);
    mask_ = capacity - 1;
    shift_ = 64;
    for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
    used_ = size_ = erased_ = 0;
    for (const std::uint64_t k : old) {
      if (k != kEmpty && k != kErased) Insert(k);  // Stored(k) == k for k >= 2
    }
  }

  std::vector<std::uint64_t> slots_;  // capacity is a power of two
  std::size_t mask_ = 0;
  int shift_ = 64;
  std::size_t used_ = 0;    // slots not empty (keys and tombstones)
  std::size_t size_ = 0;    // keys
  std::size_t erased_ = 0;  // tombstones
};

}  // namespace tidelane::core
