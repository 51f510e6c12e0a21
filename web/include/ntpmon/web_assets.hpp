// The web dashboard's files (HTML, JS, CSS, the charting library), embedded into the binary at
// build time, and their lookup by URL path.
//
// Responsible for: the read-only table of assets that web/CMakeLists.txt generates from web/*
// and from the charting library's ready-made files in the build directory's node_modules; for
// each asset its URL path, Content-Type, bytes and a strong ETag; mapping a request path to an
// asset ("/" is index.html). The bytes live in the binary's read-only data for the life of the
// process, so the views and spans below never dangle. Not responsible for: HTTP (status codes,
// headers, conditional requests: the daemon's HTTP server does that), the JSON API the page
// reads, or anything at runtime on disk or on the network (there is none).
#pragma once

#include <span>
#include <string_view>

namespace ntpmon::web {

struct WebAsset {
  std::string_view path;          // absolute URL path, e.g. "/assets/app.js"
  std::string_view content_type;  // full header value, e.g. "text/javascript; charset=utf-8"
  std::span<const unsigned char> data;
  // Strong entity tag including its quotes (e.g. "\"3f9a0c...\""), derived from the content,
  // for ETag / If-None-Match: a rebuilt binary with a changed file gets a new tag.
  std::string_view etag;
};

// The asset served for a request path, or nullptr. "/" and "" give "/index.html"; a query
// string or fragment ("/?x=1", "/assets/app.js#y") is ignored; matching is exact and
// case-sensitive otherwise, so "/assets/../index.html" or "/assets/" find nothing. Never throws:
// the path comes straight from an untrusted request line.
[[nodiscard]] const WebAsset* find_web_asset(std::string_view path) noexcept;

// Every embedded asset, in a fixed order ("/index.html" first).
[[nodiscard]] std::span<const WebAsset> web_assets() noexcept;

}  // namespace ntpmon::web
