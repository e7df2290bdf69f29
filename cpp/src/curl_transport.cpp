// CurlTransport: one request = one libcurl easy handle driven by a multi handle.
//
// Why a multi handle even for one request: curl_multi_poll() waits at most 100 ms, so the abort
// hook is polled while a server keeps us waiting (curl_easy_perform would block until a timeout).
//
// Connection reuse: a request checks out a Session (a multi handle with its easy handle) from a
// pool and returns it afterwards. The multi handle owns the connection cache, so the next request
// from the pool finds the kept-alive connection. The pool hands out a session that last spoke to
// the request's origin when it has one: after a round of parallel reads to both servers (the
// preflight), the next round's requests each find their server's connection instead of a session
// whose cache holds only the other server's. A session is used by one thread at a time, which
// keeps libcurl's rule "a handle is never used from two threads at once" without any locking
// inside libcurl (a CURLSH connection cache shared between threads is not supported by libcurl).
#include "opnc/curl_transport.hpp"

#include "opnc/log.hpp"

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <mutex>
#include <vector>

namespace opnc {
namespace {

// libcurl must be initialised once per process before any handle exists; a function-local static
// is initialised exactly once even when several threads get here at the same time.
void ensure_curl_initialised() {
    static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    (void)rc;
}

// How many idle sessions (each with its kept-alive connections) the pool keeps.
constexpr std::size_t kMaxIdleSessions = 16;
// Connections kept alive per session: OpenProject and Nextcloud, with room to spare.
constexpr long kMaxConnectionsPerSession = 8;
// The response headers are capped separately from the body so that a header flood cannot grow memory.
constexpr std::size_t kMaxHeaderBytes = 256 * 1024;
// Most the abort hook may wait between two checks (milliseconds).
constexpr int kAbortPollMs = 100;

struct Session {
    CURLM* multi = nullptr;
    CURL* easy = nullptr;
    // "scheme://host:port" of the last request: a kept-alive connection to it is likely cached.
    std::string origin;

    Session() {
        multi = curl_multi_init();
        easy = curl_easy_init();
        if (multi) curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, kMaxConnectionsPerSession);
    }
    ~Session() {
        // The easy handle is never left attached to the multi handle (see CurlTransport::send).
        if (easy) curl_easy_cleanup(easy);
        if (multi) curl_multi_cleanup(multi);
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    bool valid() const noexcept { return multi != nullptr && easy != nullptr; }
};

// A curl_slist whose strings are zeroed before they are freed: one of them is the Authorization header.
class HeaderList {
public:
    HeaderList() = default;
    HeaderList(const HeaderList&) = delete;
    HeaderList& operator=(const HeaderList&) = delete;
    ~HeaderList() {
        for (curl_slist* item = list_; item != nullptr; item = item->next)
            if (item->data) OPENSSL_cleanse(item->data, std::strlen(item->data));
        curl_slist_free_all(list_);
    }
    bool append(const std::string& line) {
        curl_slist* next = curl_slist_append(list_, line.c_str());
        if (!next) return false;
        list_ = next;
        return true;
    }
    curl_slist* get() const noexcept { return list_; }

private:
    curl_slist* list_ = nullptr;
};

// What the callbacks fill while a transfer runs.
struct Exchange {
    HttpResponse response;
    std::size_t max_body = 0;
    std::size_t header_bytes = 0;
    bool too_large = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
    auto* ex = static_cast<Exchange*>(user);
    const std::size_t n = size * count;
    if (ex->response.body.size() + n > ex->max_body) {
        ex->too_large = true;
        return 0;  // makes curl stop with CURLE_WRITE_ERROR
    }
    ex->response.body.append(data, n);
    return n;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto* ex = static_cast<Exchange*>(user);
    const std::size_t n = size * count;
    ex->header_bytes += n;
    if (ex->header_bytes > kMaxHeaderBytes) {
        ex->too_large = true;
        return 0;
    }
    std::string_view line(data, n);
    if (line.starts_with("HTTP/")) {
        // A new status line: an interim answer (100 Continue) came before; keep only the final one.
        ex->response.headers.clear();
        return n;
    }
    if (trim(line).empty()) return n;
    if ((line.front() == ' ' || line.front() == '\t') && !ex->response.headers.empty()) {
        // An obsolete folded continuation line (RFC 9112 section 5.2) belongs to the header before.
        auto& value = ex->response.headers.back().second;
        value += ' ';
        value += trim(line);
        return n;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return n;  // not a header: ignore, as browsers do
    ex->response.headers.emplace_back(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
    return n;
}

bool is_method_token(std::string_view method) {
    return !method.empty() && std::all_of(method.begin(), method.end(), [](unsigned char c) { return c >= 'A' && c <= 'Z'; });
}

bool has_line_break(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

bool same_header_name(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
               return std::tolower(x) == std::tolower(y);
           });
}

// Host and port of the request URL, for messages. Refuses user-info: credentials travel as
// BasicAuth, and an error message built from such a URL could leak the password.
struct Target {
    std::string host;
    std::string authority;  // host:port
    std::string origin;     // scheme://host:port
};

std::expected<Target, TransportError> parse_target(const std::string& url) {
    TransportError bad;
    bad.kind = TransportError::Kind::other;
    bad.maybe_delivered = false;
    CURLU* handle = curl_url();
    if (!handle) {
        bad.message = "Out of memory while parsing a request URL.";
        return std::unexpected(bad);
    }
    Target target;
    bool ok = curl_url_set(handle, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK;
    char* part = nullptr;
    if (ok && (curl_url_get(handle, CURLUPART_USER, &part, 0) == CURLUE_OK ||
               curl_url_get(handle, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK)) {
        curl_free(part);
        curl_url_cleanup(handle);
        bad.message = "Refusing to send a request whose URL contains user-info; credentials go in basic or bearer.";
        return std::unexpected(bad);
    }
    if (ok && curl_url_get(handle, CURLUPART_HOST, &part, 0) == CURLUE_OK) {
        target.host = part;
        curl_free(part);
        target.authority = target.host;
        if (curl_url_get(handle, CURLUPART_PORT, &part, CURLU_DEFAULT_PORT) == CURLUE_OK) {
            target.authority += ":";
            target.authority += part;
            curl_free(part);
        }
    } else {
        ok = false;
    }
    if (ok && curl_url_get(handle, CURLUPART_SCHEME, &part, 0) == CURLUE_OK) {
        target.origin = std::string(part) + "://" + target.authority;
        curl_free(part);
    }
    curl_url_cleanup(handle);
    if (!ok) {
        bad.message = "The request URL is not a valid absolute http(s) URL.";
        return std::unexpected(bad);
    }
    return target;
}

// The request URL as it may appear in a log line: without query and fragment, which can carry an
// authorization code or state (user-info never gets this far: parse_target refuses it).
std::string_view loggable_url(std::string_view url) { return url.substr(0, url.find_first_of("?#")); }

// One DEBUG line per request: method, URL, outcome, time, and whether it opened a connection (an
// operator reading a slow run sees what was reused). Never header values or bodies (they hold the
// credentials and the one-time secrets). Called with no lock held (log.hpp).
void log_request(const HttpRequest& request, std::string_view outcome, double elapsed_ms, long new_connections) {
    if (!log_enabled(LogLevel::debug)) return;
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.1f ms", elapsed_ms);
    std::string line;
    line.reserve(request.url.size() + outcome.size() + 48);
    line.append(request.method).append(" ").append(loggable_url(request.url)).append(" -> ");
    line.append(outcome).append(" (").append(ms);
    if (new_connections > 0) line.append(", new connection");
    line.append(")");
    log(LogLevel::debug, "http", line);
}

bool is_tls_failure(CURLcode code) {
    switch (code) {
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
        case CURLE_USE_SSL_FAILED:
            return true;
        default:
            return false;
    }
}

}  // namespace

struct CurlTransport::Impl {
    TransportOptions options;
    std::atomic<long> connections{0};
    std::mutex pool_mutex;
    std::vector<std::unique_ptr<Session>> idle;

    // The most recently used idle session that last spoke to `origin`, else a new one. Not another
    // origin's session: its connections would be of no use, and it would no longer be found for
    // its own origin, whose next request would then open a connection too.
    std::unique_ptr<Session> checkout(const std::string& origin) {
        {
            std::lock_guard lock(pool_mutex);
            auto found = std::find_if(idle.rbegin(), idle.rend(), [&](const auto& s) { return s->origin == origin; });
            if (found != idle.rend()) {
                auto it = std::prev(found.base());
                auto session = std::move(*it);
                idle.erase(it);
                return session;
            }
        }
        return std::make_unique<Session>();
    }

    void checkin(std::unique_ptr<Session> session) {
        std::unique_ptr<Session> evicted;  // destroyed after the lock is released, closing its connections
        std::lock_guard lock(pool_mutex);
        if (idle.size() >= kMaxIdleSessions) {
            evicted = std::move(idle.front());  // the least recently used
            idle.erase(idle.begin());
        }
        idle.push_back(std::move(session));
    }
};

CurlTransport::CurlTransport(TransportOptions options) : impl_(std::make_unique<Impl>()) {
    ensure_curl_initialised();
    impl_->options = std::move(options);
}

CurlTransport::~CurlTransport() = default;

const TransportOptions& CurlTransport::options() const noexcept { return impl_->options; }

long CurlTransport::connections_opened() const noexcept { return impl_->connections.load(); }

std::expected<HttpResponse, TransportError> CurlTransport::send(const HttpRequest& request) {
    const auto started = std::chrono::steady_clock::now();
    const auto& options = impl_->options;

    auto target = parse_target(request.url);
    if (!target) return std::unexpected(target.error());

    TransportError refused;
    refused.kind = TransportError::Kind::other;
    refused.host = target->host;
    refused.maybe_delivered = false;
    if (!is_method_token(request.method)) {
        refused.message = "Refusing to send a request to " + target->authority + " with an invalid HTTP method.";
        return std::unexpected(refused);
    }

    const auto authorization = request.authorization();
    HeaderList headers;
    bool has_content_type = false;
    for (const auto& [name, value] : request.headers) {
        if (name.empty() || name.find(':') != std::string::npos || has_line_break(name) || has_line_break(value)) {
            refused.message = "Refusing to send a request to " + target->authority + " with a malformed header.";
            return std::unexpected(refused);
        }
        // The Authorization header is built from basic/bearer only (and so never held as plain text upstream).
        if (authorization && same_header_name(name, "Authorization")) continue;
        if (same_header_name(name, "Content-Type")) has_content_type = true;
        // "Name;" is curl's way to send a header with an empty value ("Name:" would remove it).
        if (!headers.append(value.empty() ? name + ";" : name + ": " + value)) {
            refused.message = "Out of memory while preparing a request to " + target->authority + ".";
            return std::unexpected(refused);
        }
    }
    if (authorization) {
        Secret line(std::string("Authorization: ") + authorization->expose());
        if (has_line_break(line.expose())) {
            refused.message = "Refusing to send a request to " + target->authority + " with a line break in its credentials.";
            return std::unexpected(refused);
        }
        headers.append(line.expose());
    }
    const bool sends_body = !request.body.empty() || request.method == "POST" || request.method == "PUT" ||
                            request.method == "PATCH";
    // Without these, curl would add a form Content-Type to every body and "Expect: 100-continue"
    // to large ones; the request goes out exactly as given.
    if (sends_body && !has_content_type) headers.append("Content-Type:");
    headers.append("Expect:");

    auto session = impl_->checkout(target->origin);
    if (!session->valid()) {
        refused.message = "Cannot create a libcurl handle for a request to " + target->authority + ".";
        return std::unexpected(refused);
    }
    CURL* easy = session->easy;
    curl_easy_reset(easy);  // keeps the connection cache, drops the last request's options

    Exchange ex;
    ex.max_body = options.max_response_bytes;
    char errbuf[CURL_ERROR_SIZE] = {0};
    const auto total_timeout = request.timeout.count() > 0 ? request.timeout : options.total_timeout;

    curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options.ca_bundle.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, options.ca_bundle.c_str());
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(total_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_response_bytes));
    curl_easy_setopt(easy, CURLOPT_USERAGENT, options.user_agent.c_str());
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &ex);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &ex);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.get());
    // libcurl silently resends a request once when a reused keep-alive connection turns out dead
    // before any answer byte: for a POST or PATCH that the server already applied (a reset after
    // the work was done) that would be a blind replay. Non-idempotent requests therefore always
    // go on a fresh connection, so that a lost answer surfaces as an error and the next converge
    // decides (design: "a POST or PATCH is never blindly resent").
    const bool idempotent = request.method == "GET" || request.method == "HEAD" || request.method == "DELETE" ||
                            request.method == "PROPFIND" || request.method == "OPTIONS";
    curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, idempotent ? 0L : 1L);
    if (request.method == "GET") {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else if (request.method == "HEAD") {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);  // a HEAD answer has no body: do not wait for one
    } else {
        if (sends_body) {
            curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
        }
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }

    // Drive the transfer, checking the abort hook between waits of at most kAbortPollMs.
    CURLcode code = CURLE_OK;
    bool aborted = false;
    bool multi_failed = false;
    curl_multi_add_handle(session->multi, easy);
    for (;;) {
        int running = 0;
        if (curl_multi_perform(session->multi, &running) != CURLM_OK) {
            multi_failed = true;
            break;
        }
        if (running == 0) break;
        if (options.should_abort && options.should_abort()) {
            aborted = true;
            break;
        }
        if (curl_multi_poll(session->multi, nullptr, 0, kAbortPollMs, nullptr) != CURLM_OK) {
            multi_failed = true;
            break;
        }
    }
    if (!aborted && !multi_failed) {
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(session->multi, &left))
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) code = msg->data.result;
    }

    long new_connections = 0;
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &new_connections);
    impl_->connections += new_connections;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t pretransfer_us = 0;
    curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
    long request_bytes = 0;
    curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_bytes);
    // Removing an unfinished transfer closes its connection; a finished one goes back to the cache.
    curl_multi_remove_handle(session->multi, easy);
    session->origin = target->origin;
    impl_->checkin(std::move(session));

    const double elapsed_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();

    if (!aborted && !multi_failed && code == CURLE_OK) {
        ex.response.status = static_cast<int>(status);
        ex.response.elapsed_ms = elapsed_ms;
        log_request(request, std::to_string(status), elapsed_ms, new_connections);
        return std::move(ex.response);
    }

    TransportError error;
    error.host = target->host;
    // Nothing was written to the connection only if the transfer never reached "pretransfer" and
    // no request byte was counted; when in doubt the request may have arrived (never resend blindly).
    error.maybe_delivered = pretransfer_us > 0 || request_bytes > 0;
    const std::string& where = target->authority;
    const std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : std::string(curl_easy_strerror(code));
    if (aborted || code == CURLE_ABORTED_BY_CALLBACK) {
        error.kind = TransportError::Kind::aborted;
        error.message = "The request to " + where + " was interrupted.";
    } else if (multi_failed) {
        error.kind = TransportError::Kind::other;
        error.message = "The request to " + where + " failed inside libcurl's multi interface.";
    } else if (ex.too_large || code == CURLE_FILESIZE_EXCEEDED) {
        error.kind = TransportError::Kind::too_large;
        error.maybe_delivered = true;
        error.message = "The answer of " + where + " is larger than the limit of " +
                        std::to_string(options.max_response_bytes) + " bytes.";
    } else if (code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY) {
        error.kind = TransportError::Kind::dns;
        error.maybe_delivered = false;
        error.message = "Cannot resolve the host name '" + target->host + "'.";
    } else if (code == CURLE_COULDNT_CONNECT) {
        error.kind = TransportError::Kind::connect;
        error.maybe_delivered = false;
        error.message = "Cannot connect to " + where + ": " + detail + ".";
    } else if (is_tls_failure(code)) {
        error.kind = TransportError::Kind::tls;
        error.maybe_delivered = false;
        error.message = "TLS failure with " + where + ": " + detail + ".";
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        error.kind = TransportError::Kind::timeout;
        error.message = error.maybe_delivered
                            ? where + " did not answer within " + std::to_string(total_timeout.count()) + " ms."
                            : "Connecting to " + where + " timed out.";
    } else {
        error.kind = TransportError::Kind::other;
        error.message = "The request to " + where + " failed: " + detail + ".";
    }
    log_request(request, "failed: " + error.message, elapsed_ms, new_connections);
    return std::unexpected(error);
}

}  // namespace opnc
