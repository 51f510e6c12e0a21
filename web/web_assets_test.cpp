// The embedded dashboard: every byte equals its source file, lookups follow the header's rules.
#include "ntpmon/web_assets.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <string_view>

namespace ntpmon::web {
namespace {

std::string read_file(const std::string& name) {
  std::ifstream in(name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string_view text(const WebAsset& asset) {
  return {reinterpret_cast<const char*>(asset.data.data()), asset.data.size()};
}

TEST(WebAssets, EveryAssetIsByteForByteItsFile) {
  const std::string web = NTPMON_WEB_SOURCE_DIR;
  const std::string dist = NTPMON_UPLOT_DIST_DIR;
  const std::pair<std::string_view, std::string> expected[] = {
      {"/index.html", web + "/index.html"},
      {"/assets/app.js", web + "/app.js"},
      {"/assets/style.css", web + "/style.css"},
      {"/assets/favicon.svg", web + "/favicon.svg"},
      {"/assets/uPlot.iife.min.js", dist + "/uPlot.iife.min.js"},
      {"/assets/uPlot.min.css", dist + "/uPlot.min.css"},
      {"/assets/uPlot.LICENSE.txt", dist + "/../LICENSE"},
  };
  ASSERT_EQ(web_assets().size(), std::size(expected));
  for (std::size_t i = 0; i < std::size(expected); ++i) {
    const WebAsset& asset = web_assets()[i];
    EXPECT_EQ(asset.path, expected[i].first);
    const std::string bytes = read_file(expected[i].second);
    EXPECT_FALSE(bytes.empty()) << expected[i].second;
    EXPECT_EQ(text(asset), bytes) << asset.path;
  }
}

TEST(WebAssets, ContentTypes) {
  EXPECT_EQ(find_web_asset("/index.html")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(find_web_asset("/assets/app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(find_web_asset("/assets/uPlot.iife.min.js")->content_type,
            "text/javascript; charset=utf-8");
  EXPECT_EQ(find_web_asset("/assets/style.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(find_web_asset("/assets/uPlot.min.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(find_web_asset("/assets/favicon.svg")->content_type, "image/svg+xml");
  EXPECT_EQ(find_web_asset("/assets/uPlot.LICENSE.txt")->content_type, "text/plain; charset=utf-8");
}

TEST(WebAssets, RootAndQueryStringGiveIndex) {
  const WebAsset* index = find_web_asset("/index.html");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(find_web_asset("/"), index);
  EXPECT_EQ(find_web_asset(""), index);
  EXPECT_EQ(find_web_asset("/?window=1h"), index);
  EXPECT_EQ(find_web_asset("/#alerts"), index);
  EXPECT_EQ(find_web_asset("/assets/app.js?v=2"), find_web_asset("/assets/app.js"));
  EXPECT_NE(text(*index).find("<title>"), std::string_view::npos);
}

TEST(WebAssets, UnknownAndTrickyPathsFindNothing) {
  const std::string_view paths[] = {"/index.htm",
                                    "/INDEX.HTML",
                                    "/assets/",
                                    "/assets",
                                    "/assets/../index.html",
                                    "/assets/app.js/",
                                    "//index.html",
                                    "index.html",
                                    "/api/v1/servers",
                                    "/favicon.ico",
                                    std::string_view("/index.html\0", 12)};
  for (std::string_view path : paths) {
    EXPECT_EQ(find_web_asset(path), nullptr) << path;
  }
}

TEST(WebAssets, EtagsAreQuotedAndDifferPerContent) {
  std::set<std::string_view> tags;
  for (const WebAsset& asset : web_assets()) {
    ASSERT_EQ(asset.etag.size(), 18u) << asset.path;
    EXPECT_EQ(asset.etag.front(), '"');
    EXPECT_EQ(asset.etag.back(), '"');
    tags.insert(asset.etag);
  }
  EXPECT_EQ(tags.size(), web_assets().size());
}

TEST(WebAssets, PageReferencesOnlyEmbeddedFiles) {
  // Every local file index.html loads must be in the table: the daemon has no disk fallback.
  const std::string_view html = text(*find_web_asset("/"));
  for (std::string_view ref : {"assets/app.js", "assets/style.css", "assets/uPlot.iife.min.js",
                               "assets/uPlot.min.css", "assets/favicon.svg"}) {
    EXPECT_NE(html.find(ref), std::string_view::npos) << ref;
    EXPECT_NE(find_web_asset("/" + std::string(ref)), nullptr) << ref;
  }
  EXPECT_EQ(html.find("http://"), std::string_view::npos);
  EXPECT_EQ(html.find("https://"), std::string_view::npos);
}

}  // namespace
}  // namespace ntpmon::web
