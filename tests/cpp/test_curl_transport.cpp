// CurlTransport against the loopback server: keep-alive, timeouts, TLS, redirects, size cap,
// abort hook, methods and credentials exactly as they go on the wire. Also the http.hpp helpers.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <thread>

#include "loopback_server.hpp"
#include "opnc/curl_transport.hpp"

using opnc::BasicAuth;
using opnc::CurlTransport;
using opnc::HttpRequest;
using opnc::Secret;
using opnc::TransportError;
using opnc::TransportOptions;
using opnc::testing::CannedResponse;
using opnc::testing::LoopbackServer;
using opnc::testing::ReceivedRequest;
using opnc::testing::TlsIdentity;
using namespace std::chrono_literals;

namespace {

HttpRequest get(const std::string& url) {
    HttpRequest r;
    r.url = url;
    return r;
}

CannedResponse json_ok(std::string body = R"({"ok":true})") {
    CannedResponse r;
    r.headers = {{"Content-Type", "application/json"}};
    r.body = std::move(body);
    return r;
}

// A port on 127.0.0.1 where nothing listens.
int closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

double ms_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("find_header is case-insensitive and returns the first match", "[http]") {
    opnc::Headers h{{"Content-Type", "text/plain"}, {"X-Twice", "1"}, {"x-twice", "2"}};
    CHECK(opnc::find_header(h, "content-type") == "text/plain");
    CHECK(opnc::find_header(h, "X-TWICE") == "1");
    CHECK_FALSE(opnc::find_header(h, "Location").has_value());
    CHECK_FALSE(opnc::find_header(h, "Content-Typ").has_value());
}

TEST_CASE("HttpRequest::authorization builds Basic and Bearer values", "[http]") {
    HttpRequest r;
    CHECK_FALSE(r.authorization().has_value());
    r.basic = BasicAuth{"admin", Secret("p@ss:word")};
    CHECK(r.authorization()->expose() == "Basic YWRtaW46cEBzczp3b3Jk");  // base64("admin:p@ss:word")
    r.basic = BasicAuth{"apikey", Secret("")};
    CHECK(r.authorization()->expose() == "Basic YXBpa2V5Og==");  // base64("apikey:")
    r.basic.reset();
    r.bearer = Secret("tok.en-1");
    CHECK(r.authorization()->expose() == "Bearer tok.en-1");
}

TEST_CASE("TransportError kinds have stable names", "[http]") {
    using K = TransportError::Kind;
    CHECK(opnc::to_string(K::dns) == "dns");
    CHECK(opnc::to_string(K::connect) == "connect");
    CHECK(opnc::to_string(K::tls) == "tls");
    CHECK(opnc::to_string(K::timeout) == "timeout");
    CHECK(opnc::to_string(K::too_large) == "too_large");
    CHECK(opnc::to_string(K::aborted) == "aborted");
    CHECK(opnc::to_string(K::other) == "other");
}

TEST_CASE("to_error maps transport failures to core error kinds", "[http]") {
    using K = TransportError::Kind;
    using opnc::ErrorKind;
    const std::vector<std::pair<K, ErrorKind>> expected{
        {K::dns, ErrorKind::connection_failed}, {K::connect, ErrorKind::connection_failed},
        {K::tls, ErrorKind::tls},               {K::timeout, ErrorKind::timeout},
        {K::too_large, ErrorKind::too_large},   {K::aborted, ErrorKind::aborted},
        {K::other, ErrorKind::connection_failed}};
    for (const auto& [kind, error_kind] : expected) {
        TransportError failure;
        failure.kind = kind;
        failure.host = "nc.example.org";
        failure.message = "Cannot connect to nc.example.org:443.";
        const opnc::Error e = opnc::to_error(failure);
        INFO(opnc::to_string(kind));
        CHECK(e.kind == error_kind);
        CHECK(e.message == "Cannot connect to nc.example.org:443.");
        CHECK(e.http_status == 0);
        CHECK(e.hint.empty() == (kind == K::aborted));
    }
}

TEST_CASE("CurlTransport returns status, headers and body", "[transport]") {
    LoopbackServer server([](const ReceivedRequest&) {
        CannedResponse r = json_ok(R"({"_type":"Root"})");
        r.status = 201;
        r.reason = "Created";
        r.headers.emplace_back("X-Request-Id", "abc");
        return r;
    });
    CurlTransport transport;
    auto result = transport.send(get(server.base_url() + "/api/v3"));
    REQUIRE(result);
    CHECK(result->status == 201);
    CHECK(result->body == R"({"_type":"Root"})");
    CHECK(result->header("content-type") == "application/json");
    CHECK(result->header("X-REQUEST-ID") == "abc");
    CHECK(result->header("Content-Length") == "16");
    CHECK(result->elapsed_ms > 0);
    REQUIRE(server.requests().size() == 1);
    CHECK(server.requests()[0].method == "GET");
    CHECK(server.requests()[0].target == "/api/v3");
    CHECK(server.requests()[0].header("User-Agent") == "opnc/" OPNC_VERSION);
}

TEST_CASE("CurlTransport reuses one connection for 20 sequential requests", "[transport][keepalive]") {
    LoopbackServer server([](const ReceivedRequest&) { return json_ok(); });
    CurlTransport transport;
    for (int i = 0; i < 20; ++i) {
        auto result = transport.send(get(server.base_url() + "/n/" + std::to_string(i)));
        REQUIRE(result);
        CHECK(result->status == 200);
    }
    CHECK(transport.connections_opened() == 1);
    CHECK(server.accepted_connections() == 1);
    CHECK(server.requests().size() == 20);
}

TEST_CASE("CurlTransport is safe to use from several threads at once", "[transport][threads]") {
    LoopbackServer server([](const ReceivedRequest& req) {
        CannedResponse r = json_ok(req.target);
        r.delay = 20ms;
        return r;
    });
    CurlTransport transport;
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 10; ++i) {
                const std::string target = "/t" + std::to_string(t) + "/" + std::to_string(i);
                auto result = transport.send(get(server.base_url() + target));
                if (result && result->status == 200 && result->body == target) ++ok;
            }
        });
    for (auto& t : threads) t.join();
    CHECK(ok == 40);
    // Each thread checks a session out of the pool: at most one connection per concurrent request.
    CHECK(transport.connections_opened() <= 4);
    CHECK(server.accepted_connections() == transport.connections_opened());
}

TEST_CASE("CurlTransport gives a request a session whose connection goes to the same server",
          "[transport][keepalive][threads]") {
    auto slow = [](const ReceivedRequest& req) {
        CannedResponse r = json_ok(req.target);
        r.delay = 30ms;  // the requests of one round overlap, so each needs a connection of its own
        return r;
    };
    LoopbackServer a(slow), b(slow);
    CurlTransport transport;
    auto round = [&](const LoopbackServer& server, int count) {
        std::vector<std::thread> threads;
        std::atomic<int> ok{0};
        for (int i = 0; i < count; ++i)
            threads.emplace_back([&, i] {
                auto result = transport.send(get(server.base_url() + "/r" + std::to_string(i)));
                if (result && result->status == 200) ++ok;
            });
        for (auto& t : threads) t.join();
        return ok.load();
    };
    // Three parallel reads to A, then six to B: the most recently used sessions hold B's connections.
    REQUIRE(round(a, 3) == 3);
    REQUIRE(round(b, 6) == 6);
    CHECK(transport.connections_opened() == 9);
    // The next round to A finds A's sessions under them (taking the most recent would open new ones).
    REQUIRE(round(a, 3) == 3);
    REQUIRE(round(b, 5) == 5);
    CHECK(transport.connections_opened() == 9);
    CHECK(a.accepted_connections() == 3);
    CHECK(b.accepted_connections() == 6);
}

TEST_CASE("CurlTransport times out on a server that never answers", "[transport][timeout]") {
    LoopbackServer server([](const ReceivedRequest&) {
        CannedResponse r;
        r.never_answer = true;
        return r;
    });
    CurlTransport transport;
    HttpRequest req = get(server.base_url() + "/slow");
    req.timeout = 300ms;
    const auto start = std::chrono::steady_clock::now();
    auto result = transport.send(req);
    const double took = ms_since(start);
    REQUIRE_FALSE(result);
    CHECK(result.error().kind == TransportError::Kind::timeout);
    CHECK(result.error().maybe_delivered);  // the request was sent; the answer did not come
    CHECK(result.error().host == "127.0.0.1");
    CHECK_THAT(result.error().message, Catch::Contains("127.0.0.1:" + std::to_string(server.port())));
    CHECK(took >= 280);
    CHECK(took < 1500);
}

TEST_CASE("CurlTransport applies the connect timeout to a connection that never completes", "[transport][timeout]") {
    // A listener whose accept queue is full and never drained: Linux drops further SYNs, so a new
    // connection attempt hangs in the TCP handshake until the connect timeout.
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 0) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    std::vector<int> fillers;
    for (int i = 0; i < 4; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        fillers.push_back(fd);
    }
    std::this_thread::sleep_for(50ms);
    TransportOptions options;
    options.connect_timeout = 300ms;
    options.total_timeout = 5'000ms;
    CurlTransport transport(options);
    const auto start = std::chrono::steady_clock::now();
    auto result = transport.send(get("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/"));
    const double took = ms_since(start);
    for (int fd : fillers) ::close(fd);
    ::close(listener);
    REQUIRE_FALSE(result);
    CHECK(result.error().kind == TransportError::Kind::timeout);
    CHECK_FALSE(result.error().maybe_delivered);  // the request never left
    CHECK_THAT(result.error().message, Catch::Contains("Connecting to 127.0.0.1:"));
    CHECK(took >= 280);
    CHECK(took < 2'000);
}

TEST_CASE("CurlTransport reports a closed port as an undelivered connect error", "[transport]") {
    const int port = closed_port();
    CurlTransport transport;
    auto result = transport.send(get("http://127.0.0.1:" + std::to_string(port) + "/"));
    REQUIRE_FALSE(result);
    CHECK(result.error().kind == TransportError::Kind::connect);
    CHECK_FALSE(result.error().maybe_delivered);
    CHECK_THAT(result.error().message, Catch::Contains("127.0.0.1:" + std::to_string(port)));
}

TEST_CASE("CurlTransport reports an unresolvable host as an undelivered dns error", "[transport][dns]") {
    // ".invalid" never resolves (RFC 6761); the connect timeout also bounds the name lookup.
    TransportOptions options;
    options.connect_timeout = 3'000ms;
    CurlTransport transport(options);
    auto result = transport.send(get("http://opnc-no-such-host.invalid/status.php"));
    REQUIRE_FALSE(result);
    CHECK(result.error().kind == TransportError::Kind::dns);
    CHECK_FALSE(result.error().maybe_delivered);
    CHECK(result.error().host == "opnc-no-such-host.invalid");
    CHECK(result.error().message == "Cannot resolve the host name 'opnc-no-such-host.invalid'.");
}

TEST_CASE("CurlTransport verifies TLS certificates", "[transport][tls]") {
    TlsIdentity identity("127.0.0.1");
    LoopbackServer server([](const ReceivedRequest&) { return json_ok(); }, &identity);
    REQUIRE(server.base_url().starts_with("https://"));

    SECTION("a self-signed certificate is refused without a CA bundle") {
        CurlTransport transport;
        auto result = transport.send(get(server.base_url() + "/"));
        REQUIRE_FALSE(result);
        CHECK(result.error().kind == TransportError::Kind::tls);
        CHECK_FALSE(result.error().maybe_delivered);
        CHECK_THAT(result.error().message, Catch::Contains("TLS failure with 127.0.0.1:" + std::to_string(server.port())));
        CHECK(server.requests().empty());
    }
    SECTION("the same certificate as CA bundle is accepted") {
        const auto dir = std::filesystem::temp_directory_path() / ("opnc-test-ca-" + std::to_string(::getpid()) + "-" + std::to_string(server.port()));
        std::filesystem::create_directories(dir);
        identity.write_certificate(dir / "ca.pem");
        TransportOptions options;
        options.ca_bundle = (dir / "ca.pem").string();
        CurlTransport transport(options);
        auto result = transport.send(get(server.base_url() + "/secure"));
        std::filesystem::remove_all(dir);
        REQUIRE(result);
        CHECK(result->status == 200);
        CHECK(result->body == R"({"ok":true})");
        REQUIRE(server.requests().size() == 1);
        CHECK(server.requests()[0].target == "/secure");
    }
    SECTION("a certificate for another name is refused even when trusted") {
        TlsIdentity other("127.0.0.2");
        LoopbackServer wrong_name([](const ReceivedRequest&) { return json_ok(); }, &other);
        const auto dir = std::filesystem::temp_directory_path() / ("opnc-test-ca2-" + std::to_string(::getpid()) + "-" + std::to_string(wrong_name.port()));
        std::filesystem::create_directories(dir);
        other.write_certificate(dir / "ca.pem");
        TransportOptions options;
        options.ca_bundle = (dir / "ca.pem").string();
        CurlTransport transport(options);
        auto result = transport.send(get(wrong_name.base_url() + "/"));
        std::filesystem::remove_all(dir);
        REQUIRE_FALSE(result);
        CHECK(result.error().kind == TransportError::Kind::tls);
    }
}

TEST_CASE("CurlTransport returns a redirect instead of following it", "[transport]") {
    LoopbackServer server([](const ReceivedRequest& req) {
        if (req.target == "/login") return json_ok("login page");
        CannedResponse r;
        r.status = 302;
        r.reason = "Found";
        r.headers = {{"Location", "/login"}};
        return r;
    });
    CurlTransport transport;
    auto result = transport.send(get(server.base_url() + "/api/v3/storages"));
    REQUIRE(result);
    CHECK(result->status == 302);
    CHECK(result->header("Location") == "/login");
    CHECK(server.requests().size() == 1);
}

TEST_CASE("CurlTransport caps the response size", "[transport][cap]") {
    LoopbackServer server([](const ReceivedRequest& req) {
        CannedResponse r;
        r.body = std::string(req.target == "/big" ? 5000 : 1000, 'x');
        return r;
    });
    TransportOptions options;
    options.max_response_bytes = 1000;
    CurlTransport transport(options);
    auto fits = transport.send(get(server.base_url() + "/fits"));
    REQUIRE(fits);
    CHECK(fits->body.size() == 1000);
    auto big = transport.send(get(server.base_url() + "/big"));
    REQUIRE_FALSE(big);
    CHECK(big.error().kind == TransportError::Kind::too_large);
    CHECK(big.error().maybe_delivered);
    CHECK_THAT(big.error().message, Catch::Contains("1000 bytes"));
}

TEST_CASE("CurlTransport caps a response without Content-Length while it streams", "[transport][cap]") {
    LoopbackServer server([](const ReceivedRequest&) {
        CannedResponse r;
        // Chunked: the size is unknown up front, so only the running count can stop it.
        r.headers = {{"Transfer-Encoding", "chunked"}};
        std::string chunk(800, 'y');
        char size_hex[16];
        std::snprintf(size_hex, sizeof size_hex, "%zx", chunk.size());
        for (int i = 0; i < 3; ++i) r.body += std::string(size_hex) + "\r\n" + chunk + "\r\n";
        r.body += "0\r\n\r\n";
        return r;
    });
    TransportOptions options;
    options.max_response_bytes = 1000;
    CurlTransport transport(options);
    auto result = transport.send(get(server.base_url() + "/stream"));
    REQUIRE_FALSE(result);
    CHECK(result.error().kind == TransportError::Kind::too_large);
}

TEST_CASE("CurlTransport polls the abort hook while it waits", "[transport][abort]") {
    LoopbackServer server([](const ReceivedRequest&) {
        CannedResponse r;
        r.never_answer = true;
        return r;
    });
    const auto start = std::chrono::steady_clock::now();
    std::vector<double> polled_at;  // only the transfer's thread calls the hook
    TransportOptions options;
    options.should_abort = [&] {
        polled_at.push_back(ms_since(start));
        return polled_at.back() >= 150;
    };
    CurlTransport transport(options);
    auto result = transport.send(get(server.base_url() + "/hang"));
    const double took = ms_since(start);
    REQUIRE_FALSE(result);
    CHECK(result.error().kind == TransportError::Kind::aborted);
    CHECK_THAT(result.error().message, Catch::Contains("interrupted"));
    // The hook says "abort" from 150 ms on; the transfer ends at the first poll after that.
    CHECK(took >= 150);
    CHECK(took < 400);
    REQUIRE(polled_at.size() >= 2);
    CHECK(took - polled_at.back() < 50);
    // Polled at least every 100 ms while the server is silent (a little slack for a busy machine).
    for (std::size_t i = 1; i < polled_at.size(); ++i) CHECK(polled_at[i] - polled_at[i - 1] <= 130);
}

TEST_CASE("CurlTransport sends Basic and Bearer credentials exactly", "[transport][auth]") {
    LoopbackServer server([](const ReceivedRequest&) { return json_ok(); });
    CurlTransport transport;
    HttpRequest basic = get(server.base_url() + "/api/v3/users/me");
    basic.basic = BasicAuth{"apikey", Secret("0123456789abcdef")};
    REQUIRE(transport.send(basic));
    HttpRequest bearer = get(server.base_url() + "/ocs/v2.php/cloud/user");
    bearer.bearer = Secret("tok-XYZ.1");
    // A hand-made Authorization header never goes out next to the real one.
    bearer.headers = {{"authorization", "Basic spoofed"}, {"OCS-APIRequest", "true"}};
    REQUIRE(transport.send(bearer));
    auto seen = server.requests();
    REQUIRE(seen.size() == 2);
    // base64("apikey:0123456789abcdef")
    CHECK_THAT(seen[0].head, Catch::Contains("\r\nAuthorization: Basic YXBpa2V5OjAxMjM0NTY3ODlhYmNkZWY=\r\n"));
    CHECK_THAT(seen[1].head, Catch::Contains("\r\nAuthorization: Bearer tok-XYZ.1\r\n"));
    CHECK_THAT(seen[1].head, Catch::Contains("\r\nOCS-APIRequest: true\r\n"));
    CHECK(seen[1].head.find("spoofed") == std::string::npos);
    HttpRequest none = get(server.base_url() + "/status.php");
    REQUIRE(transport.send(none));
    CHECK(server.requests()[2].head.find("Authorization") == std::string::npos);
}

TEST_CASE("CurlTransport sends methods, headers and bodies as given", "[transport][methods]") {
    LoopbackServer server([](const ReceivedRequest& req) {
        CannedResponse r = json_ok(req.method == "HEAD" ? std::string(1000, 'h') : req.method);
        return r;
    });
    CurlTransport transport;

    SECTION("POST with a JSON body") {
        HttpRequest req = get(server.base_url() + "/api/v3/storages");
        req.method = "POST";
        req.headers = {{"Content-Type", "application/json"}, {"Accept", "application/hal+json"}};
        req.body = R"({"name":"Nextcloud"})";
        auto result = transport.send(req);
        REQUIRE(result);
        CHECK(result->body == "POST");
        const auto seen = server.requests().at(0);
        CHECK(seen.method == "POST");
        CHECK(seen.body == R"({"name":"Nextcloud"})");
        CHECK(seen.header("Content-Type") == "application/json");
        CHECK(seen.header("Content-Length") == "20");
        CHECK(seen.header("Accept") == "application/hal+json");
        CHECK_FALSE(seen.header("Expect").has_value());
    }
    SECTION("PATCH without Content-Type gets none added") {
        HttpRequest req = get(server.base_url() + "/api/v3/storages/7");
        req.method = "PATCH";
        req.body = "raw";
        REQUIRE(transport.send(req));
        const auto seen = server.requests().at(0);
        CHECK(seen.method == "PATCH");
        CHECK(seen.body == "raw");
        CHECK_FALSE(seen.header("Content-Type").has_value());
    }
    SECTION("POST with an empty body sends Content-Length 0") {
        HttpRequest req = get(server.base_url() + "/x");
        req.method = "POST";
        REQUIRE(transport.send(req));
        CHECK(server.requests().at(0).header("Content-Length") == "0");
    }
    SECTION("DELETE without a body sends no body") {
        HttpRequest req = get(server.base_url() + "/api/v3/storages/7");
        req.method = "DELETE";
        auto result = transport.send(req);
        REQUIRE(result);
        CHECK(result->body == "DELETE");
        const auto seen = server.requests().at(0);
        CHECK(seen.method == "DELETE");
        CHECK_FALSE(seen.header("Content-Length").has_value());
    }
    SECTION("PROPFIND with a body and a Depth header") {
        HttpRequest req = get(server.base_url() + "/remote.php/dav/files/OpenProject");
        req.method = "PROPFIND";
        req.headers = {{"Depth", "0"}, {"Content-Type", "application/xml"}};
        req.body = "<propfind/>";
        REQUIRE(transport.send(req));
        const auto seen = server.requests().at(0);
        CHECK(seen.method == "PROPFIND");
        CHECK(seen.header("Depth") == "0");
        CHECK(seen.body == "<propfind/>");
    }
    SECTION("HEAD does not wait for the body its Content-Length announces") {
        HttpRequest req = get(server.base_url() + "/remote.php/dav");
        req.method = "HEAD";
        req.timeout = 2000ms;
        const auto start = std::chrono::steady_clock::now();
        auto result = transport.send(req);
        REQUIRE(result);
        CHECK(ms_since(start) < 1000);
        CHECK(result->status == 200);
        CHECK(result->header("Content-Length") == "1000");
        CHECK(result->body.empty());
        CHECK(server.requests().at(0).method == "HEAD");
    }
    SECTION("a header with an empty value is sent, not dropped") {
        HttpRequest req = get(server.base_url() + "/x");
        req.headers = {{"X-Empty", ""}};
        REQUIRE(transport.send(req));
        CHECK_THAT(server.requests().at(0).head, Catch::Contains("\r\nX-Empty:"));
    }
}

TEST_CASE("CurlTransport refuses malformed requests before sending anything", "[transport]") {
    LoopbackServer server([](const ReceivedRequest&) { return json_ok(); });
    CurlTransport transport;
    HttpRequest injected = get(server.base_url() + "/x");
    injected.headers = {{"X-A", "1\r\nX-Injected: yes"}};
    auto r1 = transport.send(injected);
    REQUIRE_FALSE(r1);
    CHECK(r1.error().kind == TransportError::Kind::other);
    CHECK_FALSE(r1.error().maybe_delivered);

    HttpRequest bad_method = get(server.base_url() + "/x");
    bad_method.method = "GET /evil HTTP/1.1\r\n";
    CHECK_FALSE(transport.send(bad_method));

    HttpRequest userinfo = get("http://admin:hunter2@127.0.0.1:" + std::to_string(server.port()) + "/");
    auto r3 = transport.send(userinfo);
    REQUIRE_FALSE(r3);
    CHECK(r3.error().message.find("hunter2") == std::string::npos);

    CHECK(server.requests().empty());
}
