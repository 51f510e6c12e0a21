// The strict YAML checks shared by the configuration readers (config/yaml_check.hpp): key
// checks of a mapping, value checks, the "got ..." wording and the order errors come out in.
#include "config/yaml_check.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace ntpmon::config {
namespace {

constexpr std::array<std::string_view, 2> kKeys = {"alpha", "beta"};
constexpr std::array<std::string_view, 1> kRefused = {"gamma"};

// Makes the protected checks callable and returns the errors as "line:col: message".
class TestChecker : public YamlChecker {
 public:
  explicit TestChecker(ScalarStyle style = ScalarStyle::kAsWritten)
      : YamlChecker("test.yml", style) {}

  std::vector<Field> keys(const std::string& yaml, UnsupportedKeys unsupported = {}) {
    root_ = YAML::Load(yaml);
    return fields_of(root_, "in test", kKeys, unsupported);
  }
  using YamlChecker::describe;
  using YamlChecker::has_value;
  using YamlChecker::scalar;

  std::vector<std::string> messages(std::span<const std::string> later_files = {}) {
    std::vector<std::string> out;
    for (const auto& e : take_errors(later_files)) out.push_back(e.to_string());
    return out;
  }

 private:
  YAML::Node root_;
};

TEST(YamlCheck, DescribeSaysWhatTheFileHolds) {
  for (const auto style : {ScalarStyle::kAsWritten, ScalarStyle::kMarkQuotedStrings}) {
    EXPECT_EQ(describe(YAML::Load("~"), style), "nothing");
    EXPECT_EQ(describe(YAML::Load("[1]"), style), "a list");
    EXPECT_EQ(describe(YAML::Load("{a: 1}"), style), "a mapping");
    EXPECT_EQ(describe(YAML::Load("12"), style), "'12'");
  }
  EXPECT_EQ(describe(YAML::Load("\"12\""), ScalarStyle::kAsWritten), "'12'");
  EXPECT_EQ(describe(YAML::Load("\"a\\tb\""), ScalarStyle::kAsWritten), "'a\\x09b'");
  EXPECT_EQ(describe(YAML::Load("\"a\\tb\""), ScalarStyle::kMarkQuotedStrings),
            "the quoted string \"a\\x09b\"");
  EXPECT_EQ(describe(YAML::Load("\"12\""), ScalarStyle::kMarkQuotedStrings),
            "the quoted string \"12\"");
  EXPECT_EQ(describe(YAML::Load("'12'"), ScalarStyle::kMarkQuotedStrings),
            "the quoted string \"12\"");
  EXPECT_EQ(describe(YAML::Load(std::string(50, 'x')), ScalarStyle::kAsWritten),
            "'" + std::string(40, 'x') + "...'");
}

TEST(YamlCheck, PlainScalarsOnly) {
  EXPECT_TRUE(is_plain(YAML::Load("123")));
  EXPECT_FALSE(is_plain(YAML::Load("\"123\"")));
  EXPECT_FALSE(is_plain(YAML::Load("|\n  123\n")));
}

TEST(YamlCheck, JoinWithAndWithoutAName) {
  EXPECT_EQ(join(kKeys), "alpha, beta");
  EXPECT_EQ(join(std::array<std::string_view, 0>{}), "");
  struct Named {
    std::string_view name;
    int value;
  };
  constexpr std::array<Named, 2> kNamed = {{{"one", 1}, {"two", 2}}};
  EXPECT_EQ(join(kNamed, &Named::name), "one, two");
  EXPECT_EQ(join(std::array<int, 3>{1, 2, 3}, [](int i) { return i == 2 ? "b" : "x"; }), "x, b, x");
}

TEST(YamlCheck, FindByKey) {
  TestChecker checker;
  const auto fields = checker.keys("alpha: 1\nbeta: 2\n");
  ASSERT_NE(find(fields, "beta"), nullptr);
  EXPECT_EQ(find(fields, "beta")->value.Scalar(), "2");
  EXPECT_EQ(find(fields, "gamma"), nullptr);
}

TEST(YamlCheck, KeyChecksOfAMapping) {
  TestChecker checker;
  const auto fields = checker.keys("alpha: 1\n[x]: 2\nzeta: 3\nalpha: 4\nbeta:\n");
  ASSERT_EQ(fields.size(), 2U);
  EXPECT_EQ(fields[0].key, "alpha");
  EXPECT_EQ(fields[0].value.Scalar(), "1");
  EXPECT_EQ(fields[1].key, "beta");
  EXPECT_EQ(checker.messages(),
            (std::vector<std::string>{
                "test.yml:2:1: a key in test must be a plain name, got a list",
                "test.yml:3:1: unknown key 'zeta' in test (expected one of: alpha, beta)",
                "test.yml:4:1: duplicate key 'alpha' in test (first set at line 1)",
            }));
}

TEST(YamlCheck, UnsupportedKeysSayWhy) {
  TestChecker checker;
  const auto fields =
      checker.keys("gamma: 1\nalpha: 2\n", UnsupportedKeys{kRefused, "is not for tests"});
  EXPECT_EQ(fields.size(), 1U);
  EXPECT_EQ(checker.messages(),
            std::vector<std::string>{"test.yml:1:1: 'gamma' in test is not for tests"});
}

TEST(YamlCheck, ValueChecks) {
  TestChecker checker;
  const auto fields = checker.keys("alpha:\nbeta: [1]\n");
  ASSERT_EQ(fields.size(), 2U);
  EXPECT_FALSE(checker.has_value(fields[0], "a number"));
  EXPECT_TRUE(checker.has_value(fields[1], "a number"));
  EXPECT_EQ(checker.scalar(fields[0], "a string"), std::nullopt);
  EXPECT_EQ(checker.scalar(fields[1], "a string"), std::nullopt);
  EXPECT_EQ(checker.messages(), (std::vector<std::string>{
                                    "test.yml:1:1: 'alpha' has no value (expected a number)",
                                    "test.yml:1:1: 'alpha' has no value (expected a string)",
                                    "test.yml:2:7: 'beta' must be a string, got a list",
                                }));
  TestChecker ok;
  const auto good = ok.keys("alpha: \"x y\"\n");
  EXPECT_EQ(ok.scalar(good.at(0), "a string"), "x y");
  EXPECT_TRUE(ok.messages().empty());
}

TEST(YamlCheck, ErrorsComeOutInFileOrder) {
  TestChecker checker;
  checker.error("no position");
  checker.error_at(YAML::Mark::null_mark(), "no position either");
  YAML::Mark late;
  late.line = 9;
  late.column = 0;
  checker.error_at(late, "late");
  YAML::Mark early;
  early.line = 1;
  early.column = 4;
  checker.error_at(early, "early");
  EXPECT_EQ(checker.messages(), (std::vector<std::string>{
                                    "test.yml:2:5: early",
                                    "test.yml:10:1: late",
                                    "test.yml: no position",
                                    "test.yml: no position either",
                                }));
}

TEST(YamlCheck, ErrorsOfLaterFilesFollowInTheirOrder) {
  // A reader that also reads other files (server lists) adds their errors itself.
  class ListChecker : public TestChecker {
   public:
    void add(std::string file, int line) {
      errors_.push_back(ConfigError{std::move(file), line, 1, "x"});
    }
  };
  ListChecker checker;
  checker.add("b.list", 1);
  checker.add("a.list", 2);
  checker.add("test.yml", 7);
  checker.add("a.list", 1);
  const std::vector<std::string> later = {"a.list", "b.list"};
  EXPECT_EQ(checker.messages(later), (std::vector<std::string>{
                                         "test.yml:7:1: x",
                                         "a.list:1:1: x",
                                         "a.list:2:1: x",
                                         "b.list:1:1: x",
                                     }));
}

}  // namespace
}  // namespace ntpmon::config
