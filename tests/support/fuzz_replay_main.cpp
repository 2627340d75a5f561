// Corpus replay driver: with gcc the fuzz harnesses run as ordinary tests that feed every
// file of their seed corpus (and any crasher added to it) to LLVMFuzzerTestOneInput.
// Under clang with -fsanitize=fuzzer this file is not linked; libFuzzer supplies main().
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  std::size_t files = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path root{argv[i]};
    if (!std::filesystem::exists(root)) {
      std::fprintf(stderr, "corpus %s does not exist\n", argv[i]);
      return 2;
    }
    std::vector<std::filesystem::path> inputs;
    if (std::filesystem::is_directory(root)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(root))
        if (e.is_regular_file()) inputs.push_back(e.path());
    } else {
      inputs.push_back(root);
    }
    for (const auto& p : inputs) {
      std::ifstream in(p, std::ios::binary);
      std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
      ++files;
    }
  }
  // Also run a few synthetic inputs so an empty corpus still exercises the harness.
  const std::uint8_t edge[] = {0x00, 0xff, 0x80, 0x7f, 0x30, 0x30, 0x81, 0x82, 0x83, 0x84};
  for (std::size_t n = 0; n <= sizeof edge; ++n) LLVMFuzzerTestOneInput(edge, n);
  std::printf("replayed %zu corpus files\n", files);
  if (files == 0) {
    std::fprintf(stderr, "no corpus files found\n");
    return 1;
  }
  return 0;
}
