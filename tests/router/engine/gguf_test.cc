// The GGUF loader against real files (the shared fixtures) and crafted broken ones, and the
// dequantisers against values worked out by hand from the block layouts.
#include "router/engine/gguf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "tests/router/engine/gguf_builder.h"

namespace tidelane::engine {
namespace {

using testing::GgufBuilder;

std::vector<std::uint8_t> FloatBytes(const std::vector<float>& v) {
  std::vector<std::uint8_t> out(v.size() * 4);
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

GgufBuilder SmallModel() {
  GgufBuilder b;
  b.KvString("general.architecture", "llama");
  b.KvU32("llama.block_count", 2);
  b.KvF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  b.KvStrings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"});
  b.Tensor("a", 0, {4, 2}, FloatBytes({1, 2, 3, 4, 5, 6, 7, 8}));
  b.Tensor("b", 0, {3}, FloatBytes({-1, 0, 1}));
  return b;
}

TEST(Gguf, ReadsMetadataAndTensors) {
  const auto image = SmallModel().Build();
  auto f = GgufFile::FromMemory(image);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->version(), 3u);
  EXPECT_EQ((*f)->GetString("general.architecture"), "llama");
  EXPECT_EQ((*f)->GetInt("llama.block_count"), 2);
  EXPECT_NEAR(*(*f)->GetFloat("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-9);
  EXPECT_EQ((*f)->Find("tokenizer.ggml.tokens")->AsArray()->size(), 3u);
  EXPECT_EQ((*f)->Find("missing"), nullptr);
  const GgufTensor* a = (*f)->FindTensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->RowLength(), 4u);
  EXPECT_EQ(a->Rows(), 2u);
  float row[4];
  DequantizeRow(a->type, a->data + 16, row, 4);
  EXPECT_EQ(row[0], 5.0f);
  EXPECT_EQ(row[3], 8.0f);
}

TEST(Gguf, EveryTruncationIsAnErrorNotACrash) {
  const auto image = SmallModel().Build();
  for (std::size_t n = 0; n < image.size(); ++n) {
    auto f = GgufFile::FromMemory({image.data(), n});
    // Cutting only trailing padding after the last tensor is not possible here: the last
    // tensor ends the file, so every shorter image must fail.
    EXPECT_FALSE(f.ok()) << "accepted a file cut to " << n << " bytes";
  }
}

TEST(Gguf, LyingHeadersAreRejectedWithAClearMessage) {
  auto image = SmallModel().Build();
  auto patched = [&](std::size_t at, std::uint64_t v, std::size_t width) {
    auto copy = image;
    std::memcpy(copy.data() + at, &v, width);
    return GgufFile::FromMemory(copy);
  };
  auto many_tensors = patched(8, 1ULL << 60, 8);
  ASSERT_FALSE(many_tensors.ok());
  EXPECT_NE(many_tensors.error().find("tensor count"), std::string::npos) << many_tensors.error();
  EXPECT_FALSE(patched(16, 1ULL << 40, 8).ok());  // metadata count
  EXPECT_FALSE(patched(4, 7, 4).ok());            // version
  EXPECT_FALSE(patched(0, 0x46554746, 4).ok());   // magic
  // The first key's length (offset 24): a string longer than the file.
  auto long_key = patched(24, 1ULL << 50, 8);
  ASSERT_FALSE(long_key.ok());
}

TEST(Gguf, RejectsOverlapsBadTypesAndDimensions) {
  GgufBuilder overlap;
  overlap.Tensor("a", 0, {8}, FloatBytes(std::vector<float>(8, 1)));
  overlap.Tensor("b", 0, {4}, FloatBytes(std::vector<float>(4, 1)));
  auto image = overlap.Build();
  // Point b (the second info's offset) into a's data.
  std::vector<std::uint8_t> needle = {0x20, 0, 0, 0, 0, 0, 0, 0};
  auto it = std::search(image.begin(), image.end(), needle.begin(), needle.end());
  ASSERT_NE(it, image.end());
  std::fill(it, it + 8, 0);
  auto f = GgufFile::FromMemory(image);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().find("overlaps"), std::string::npos) << f.error();

  GgufBuilder bad_type;
  bad_type.Tensor("q", 99, {32}, std::vector<std::uint8_t>(64));
  EXPECT_NE(GgufFile::FromMemory(bad_type.Build()).error().find("unsupported tensor type 99"),
            std::string::npos);

  GgufBuilder ragged;  // a Q8_0 row must be whole blocks of 32
  ragged.Tensor("q", 8, {33}, std::vector<std::uint8_t>(68));
  EXPECT_FALSE(GgufFile::FromMemory(ragged.Build()).ok());
}

TEST(Gguf, OpensTheSharedModelAndSaysWhyAFileIsNotOne) {
  auto f = GgufFile::Open(TIDELANE_SHARED_DIR "/models/aidreams260K.gguf");
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->GetString("general.architecture"), "llama");
  EXPECT_NE((*f)->FindTensor("token_embd.weight"), nullptr);
  auto not_gguf = GgufFile::Open(TIDELANE_SHARED_DIR "/models/aidreams260K.bin");
  ASSERT_FALSE(not_gguf.ok());
  EXPECT_NE(not_gguf.error().find("bad magic"), std::string::npos) << not_gguf.error();
  EXPECT_FALSE(GgufFile::Open("/nonexistent/model.gguf").ok());
}

// The engine reads a model into 2 MiB pages, metadata readers map it: the same file either
// way, byte for byte, and a file cut short is refused either way.
TEST(Gguf, ReadIntoHugePagesIsTheMappedFileByteForByte) {
  const char* path = TIDELANE_SHARED_DIR "/models/aidreams260K.gguf";
  auto mapped = GgufFile::Open(path, Placement::kMapped);
  auto read = GgufFile::Open(path, Placement::kHugePages);
  ASSERT_TRUE(mapped.ok()) << mapped.error();
  ASSERT_TRUE(read.ok()) << read.error();
  EXPECT_EQ((*read)->file_bytes(), (*mapped)->file_bytes());
  ASSERT_EQ((*read)->tensors().size(), (*mapped)->tensors().size());
  for (std::size_t i = 0; i < (*mapped)->tensors().size(); ++i) {
    const GgufTensor& a = (*mapped)->tensors()[i];
    const GgufTensor& b = (*read)->tensors()[i];
    EXPECT_EQ(a.name, b.name);
    ASSERT_EQ(a.bytes, b.bytes) << a.name;
    EXPECT_NE(a.data, b.data) << a.name;  // a copy, not the mapping
    EXPECT_EQ(std::memcmp(a.data, b.data, a.bytes), 0) << a.name;
  }

  const auto dir =
      std::filesystem::temp_directory_path() / ("gguf-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto cut = dir / "cut.gguf";
  std::filesystem::copy_file(path, cut);
  std::filesystem::resize_file(cut, (*mapped)->file_bytes() - 100);
  for (const auto placement : {Placement::kMapped, Placement::kHugePages}) {
    auto f = GgufFile::Open(cut, placement);
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.error().find("cut.gguf"), std::string::npos) << f.error();
  }
  std::filesystem::remove_all(dir);
}

// A model that would not fit in memory once copied is mapped instead (paged from the file),
// never read in to get the process killed.
TEST(Gguf, AModelTooLargeToReadInIsMapped) {
  constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;
  EXPECT_EQ(PlacementFor(Placement::kHugePages, 4 * kGiB, 16 * kGiB), Placement::kHugePages);
  EXPECT_EQ(PlacementFor(Placement::kHugePages, 4 * kGiB, 4 * kGiB), Placement::kMapped);
  EXPECT_EQ(PlacementFor(Placement::kHugePages, 15 * kGiB, 16 * kGiB), Placement::kMapped);
  EXPECT_EQ(PlacementFor(Placement::kHugePages, 4 * kGiB, std::nullopt), Placement::kHugePages);
  EXPECT_EQ(PlacementFor(Placement::kMapped, 1, 16 * kGiB), Placement::kMapped);
  auto f = GgufFile::Open(TIDELANE_SHARED_DIR "/models/aidreams260K.gguf", Placement::kHugePages);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->placement(), Placement::kHugePages);  // 1 MB fits on any machine running this
}

TEST(TensorTypes, DequantisesBlocksAsTheSpecificationSays) {
  // Q8_0: d = 0.5 (half 0x3800), q = -3..28 → q * 0.5.
  std::vector<std::uint8_t> q8(34);
  const std::uint16_t half = 0x3800;
  std::memcpy(q8.data(), &half, 2);
  for (int i = 0; i < 32; ++i)
    q8[2 + i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(i - 3));
  float out[32];
  DequantizeRow(TensorType::kQ8_0, q8.data(), out, 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], 0.5f * static_cast<float>(i - 3));
  // Q4_0: low nibbles are elements 0..15, high nibbles 16..31, offset by 8.
  std::vector<std::uint8_t> q4(18);
  std::memcpy(q4.data(), &half, 2);
  for (int i = 0; i < 16; ++i) q4[2 + i] = static_cast<std::uint8_t>((15 - i) << 4 | i);
  DequantizeRow(TensorType::kQ4_0, q4.data(), out, 32);
  EXPECT_EQ(out[0], -4.0f);
  EXPECT_EQ(out[15], 3.5f);
  EXPECT_EQ(out[16], 3.5f);
  EXPECT_EQ(out[31], -4.0f);
}

TEST(TensorTypes, HalfConversionsRoundTrip) {
  for (float v : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.1f}) {
    EXPECT_NEAR(HalfToFloat(FloatToHalf(v)), v, std::fabs(v) * 1e-3 + 1e-8) << v;
  }
  EXPECT_EQ(FloatToHalf(1.0f), 0x3C00);
  EXPECT_TRUE(std::isinf(HalfToFloat(FloatToHalf(1e6f))));
  for (std::uint32_t h = 0; h < 0x7C00; ++h) {  // every finite positive half survives
    ASSERT_EQ(FloatToHalf(HalfToFloat(static_cast<std::uint16_t>(h))), h);
  }
}

}  // namespace
}  // namespace tidelane::engine
