// Fuzz target: Url::parse, opnc's policy over libcurl's URL parser. Besides "no crash, no
// undefined behaviour, no leak", it checks the properties the rest of opnc relies on:
// - a parsed URL is in normal form: parsing its str() again gives the same Url (journal keys and
//   comparisons of configured URLs depend on this);
// - str() has an http(s) scheme and never ends in '/', and join() never produces "//" in the path;
// - input with user-info ('@') is never echoed in the error message (it may carry a password).
// A broken property aborts, which libFuzzer reports as a crash with the input saved.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "opnc/url.hpp"

namespace {

[[noreturn]] void property_broken(const char* what) {
    std::fprintf(stderr, "fuzz_url: property broken: %s\n", what);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = opnc::Url::parse(text);
    if (!parsed) {
        const opnc::Error& error = parsed.error();
        if (error.kind != opnc::ErrorKind::invalid_input && error.kind != opnc::ErrorKind::internal)
            property_broken("a URL error that is not invalid_input");
        if (text.find('@') != std::string_view::npos && text.size() >= 4 &&
            error.message.find(text) != std::string::npos)
            property_broken("a URL with user-info is echoed in the error message");
        return 0;
    }

    const opnc::Url& url = *parsed;
    const std::string normal = url.str();
    if (url.scheme() != "http" && url.scheme() != "https") property_broken("a scheme other than http(s)");
    if (url.host().empty()) property_broken("an empty host");
    if (normal.ends_with('/')) property_broken("str() ends in '/'");
    if (url.port() < 0 || url.port() > 65535) property_broken("a port out of range");

    auto again = opnc::Url::parse(normal);
    if (!again) property_broken("str() of a parsed URL does not parse");
    if (!(*again == url)) property_broken("parsing str() again changes the URL (not a normal form)");

    const std::string joined = url.join("/api/v3//storages");
    if (!joined.starts_with(normal + "/")) property_broken("join() does not start with str() + '/'");
    if (joined.substr(normal.size()).find("//") != std::string::npos) property_broken("join() produced '//'");
    (void)url.is_loopback();
    (void)url.authority();
    return 0;
}
