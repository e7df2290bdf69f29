// Fuzz target: the OAuth 2.0 token response reader (oauth/token_response.hpp) and the form
// encoding it falls back on (oauth/form_encoding.hpp). The input is one token endpoint answer in
// the format of fuzz_input.hpp; the call name on the first line is "token" (a first token) or
// "refresh" (an answer to a refresh, with a previous token whose refresh token and scope may be
// carried over).
// Checked properties besides "no crash, no undefined behaviour, no leak":
// - a parsed token has a non-empty access token, a Bearer type, and an expiry that is not before
//   the time the request was sent; the expiry arithmetic (expires_within, effective_leeway) is run
//   at extreme leeways so that a chrono overflow shows up as UB;
// - form_unescape(form_escape(x)) == x for any bytes.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_input.hpp"
#include "opnc/oauth/form_encoding.hpp"
#include "opnc/oauth/token_response.hpp"

namespace {

using namespace std::chrono_literals;

[[noreturn]] void property_broken(const char* what) {
    std::fprintf(stderr, "fuzz_token_response: property broken: %s\n", what);
    std::abort();
}

std::string lowercase(std::string text) {
    for (char& c : text)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const opnc::fuzz::ScriptedAnswers answers = opnc::fuzz::read_answers(data, size);
    const opnc::HttpResponse& response = answers.responses.front();
    // A fixed clock: the target must behave the same on every run of the same input.
    const opnc::oauth::TimePoint sent_at{std::chrono::seconds(1'800'000'000)};

    opnc::oauth::Token previous;
    previous.access_token = opnc::Secret("previous-access");
    previous.refresh_token = opnc::Secret("previous-refresh");
    previous.scope = "api_v3";
    previous.obtained_at = sent_at - 1h;
    previous.expires_at = sent_at;
    const bool refresh = answers.call == "refresh";

    (void)opnc::oauth::read_oauth_error(response);
    auto parsed = opnc::oauth::parse_token_response(response, sent_at, refresh ? &previous : nullptr);
    if (parsed) {
        const opnc::oauth::Token& token = *parsed;
        if (token.access_token.empty()) property_broken("a token without access token");
        if (lowercase(token.token_type) != "bearer") property_broken("a token type other than Bearer");
        if (token.obtained_at != sent_at) property_broken("obtained_at is not the send time");
        if (token.expires_at && *token.expires_at < sent_at) property_broken("an expiry before the request");
        (void)token.lifetime();
        for (auto leeway : {0s, 30s, std::chrono::seconds(1LL << 40)}) {
            (void)token.effective_leeway(leeway);
            (void)token.expires_within(leeway, sent_at);
            (void)token.expires_within(leeway, sent_at + 24h * 365 * 100);
        }
        if (refresh && token.refresh_token.empty()) property_broken("a refresh lost the refresh token");
    } else {
        const opnc::Error& error = parsed.error();
        if (error.message.empty()) property_broken("an error without message");
        if (error.http_status != response.status)
            property_broken("an error that does not carry the HTTP status");
    }
    (void)opnc::oauth::token_endpoint_error(response);

    for (auto& [name, value] : opnc::oauth::parse_form(response.body)) (void)name, (void)value;
    if (opnc::oauth::form_unescape(opnc::oauth::form_escape(response.body)) != response.body)
        property_broken("form_unescape(form_escape(x)) != x");
    return 0;
}
