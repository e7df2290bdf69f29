#pragma once
// The input format shared by the fuzz targets that drive a client through canned HTTP answers.
// It reads like the answers themselves, so seed files can be copied from the contract:
//
//   <status> <call>            first line: HTTP status and which client call to make
//   Header-Name: value         zero or more header lines
//                              an empty line
//   body...                    everything up to the next separator line
//   --- next response ---      (optional) a further answer, for calls that send a second request
//   <status>
//   ...
//
// Every part is optional and every byte sequence is accepted: a status that does not parse is
// 200, an unknown call name is chosen from the input's bytes (so the choice stays deterministic),
// a header line without ':' ends the headers. Nothing here may fail on any input: the fuzzers
// look for crashes in the code under test, not in this reader.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "opnc/http.hpp"
#include "opnc/transport.hpp"

namespace opnc::fuzz {

inline constexpr std::string_view response_separator = "\n--- next response ---\n";

struct ScriptedAnswers {
    std::string call;                     // the name on the first line ("" when none)
    std::vector<HttpResponse> responses;  // at least one
};

// Reads "<status> <call>\nHeaders\n\nbody" (one response, see above).
inline HttpResponse read_response(std::string_view text, std::string* call_name) {
    HttpResponse response;
    response.status = 200;
    const auto line_end = text.find('\n');
    std::string_view first = text.substr(0, line_end);
    text = line_end == std::string_view::npos ? std::string_view{} : text.substr(line_end + 1);

    int status = 0;
    std::size_t i = 0;
    for (; i < first.size() && i < 3 && first[i] >= '0' && first[i] <= '9'; ++i) status = status * 10 + (first[i] - '0');
    if (i == 3 && status >= 100) response.status = status;
    if (call_name) {
        std::string_view rest = first.substr(i);
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        while (!rest.empty() && (rest.back() == '\r' || rest.back() == ' ')) rest.remove_suffix(1);
        *call_name = std::string(rest);
    }

    // Header lines until an empty line or a line that is not "Name: value".
    while (!text.empty()) {
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const auto colon = line.find(':');
        if (line.empty() || colon == std::string_view::npos || colon == 0) {
            if (line.empty()) text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
            break;
        }
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        response.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    }
    response.body = std::string(text);
    return response;
}

inline ScriptedAnswers read_answers(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    ScriptedAnswers answers;
    bool first = true;
    while (true) {
        const auto cut = text.find(response_separator);
        answers.responses.push_back(read_response(text.substr(0, cut), first ? &answers.call : nullptr));
        first = false;
        if (cut == std::string_view::npos) break;
        text = text.substr(cut + response_separator.size());
    }
    return answers;
}

// Picks one of `count` calls: the one named on the first line, else one chosen by the bytes of
// that name (deterministic, and still reachable by mutation when the name is garbled).
inline std::size_t choose_call(std::string_view name, const std::string_view* names, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
        if (names[i] == name) return i;
    std::size_t sum = 0;
    for (unsigned char c : name) sum = sum * 31 + c;
    return sum % count;
}

// A Transport that answers the scripted responses in order and then repeats the last one. It never
// touches the network; requests are only counted.
class ScriptedTransport final : public Transport {
public:
    explicit ScriptedTransport(std::vector<HttpResponse> responses) : responses_(std::move(responses)) {}

    std::expected<HttpResponse, TransportError> send(const HttpRequest&) override {
        std::lock_guard lock(mutex_);
        const std::size_t index = next_ < responses_.size() ? next_ : responses_.size() - 1;
        ++next_;
        return responses_[index];
    }

private:
    std::mutex mutex_;
    std::vector<HttpResponse> responses_;
    std::size_t next_ = 0;
};

}  // namespace opnc::fuzz
