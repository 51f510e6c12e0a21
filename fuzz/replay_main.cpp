// Runs a libFuzzer target over saved inputs without libFuzzer, so that ctest replays the
// checked-in corpus (and any crash reproducer added to it) in every ordinary build,
// including the sanitizer build.
//
// Usage: <target>_replay PATH...   (each PATH is a file or a directory of files)
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

bool replay_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  const std::vector<char> chars((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  // Copy into an exactly-sized heap buffer so ASan catches reads past the end of the input.
  std::vector<std::uint8_t> bytes(chars.begin(), chars.end());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::vector<std::filesystem::path> files;
    std::error_code error;
    if (std::filesystem::is_directory(arg, error)) {
      for (const auto& entry : std::filesystem::directory_iterator(arg, error)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());  // deterministic order for reproducible logs
    } else {
      files.push_back(arg);
    }
    if (error) {
      std::fprintf(stderr, "cannot list %s: %s\n", arg.c_str(), error.message().c_str());
      return 1;
    }
    for (const auto& file : files) {
      if (!replay_file(file)) return 1;
      ++replayed;
    }
  }
  std::printf("replayed %zu inputs\n", replayed);
  // An empty corpus means a wrong path, not a pass.
  return replayed > 0 ? 0 : 1;
}
