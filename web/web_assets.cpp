#include "ntpmon/web_assets.hpp"

#include "web_assets_table.hpp"

namespace ntpmon::web {

namespace {

constexpr std::string_view kIndexPath = "/index.html";

}  // namespace

std::span<const WebAsset> web_assets() noexcept {
  return {detail::kWebAssets, detail::kWebAssetCount};
}

const WebAsset* find_web_asset(std::string_view path) noexcept {
  // The HTTP server usually strips the query already; a path passed with it must still match.
  if (const auto cut = path.find_first_of("?#"); cut != std::string_view::npos) {
    path = path.substr(0, cut);
  }
  if (path.empty() || path == "/") path = kIndexPath;
  // A linear scan: a handful of entries, looked up once per page load.
  for (const WebAsset& asset : web_assets()) {
    if (asset.path == path) return &asset;
  }
  return nullptr;
}

}  // namespace ntpmon::web
