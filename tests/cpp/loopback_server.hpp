#pragma once
// A small HTTP/1.1 server on 127.0.0.1 (OS-chosen port) for the transport tests: plain sockets,
// optional TLS with OpenSSL, one thread per connection, keep-alive. Every request is recorded with
// its raw head exactly as it came off the wire; a handler decides the answer, which may be delayed
// or never come at all (the connection then stays open until the server stops).
//
// TlsIdentity makes a throw-away self-signed certificate (CN and SAN IP 127.0.0.1) with the OpenSSL
// API, so no key or certificate file is kept in the tree.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "opnc/http.hpp"

namespace opnc::testing {

// A self-signed certificate and its key, made in memory.
class TlsIdentity {
public:
    explicit TlsIdentity(const std::string& ip = "127.0.0.1") {
        key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
        if (!key_) throw std::runtime_error("EC key generation failed");
        cert_.reset(X509_new());
        X509* c = cert_.get();
        X509_set_version(c, 2);  // v3, for the extensions
        ASN1_INTEGER_set(X509_get_serialNumber(c), static_cast<long>(std::chrono::system_clock::now().time_since_epoch().count() & 0x7fffffff));
        X509_gmtime_adj(X509_getm_notBefore(c), -3600);
        X509_gmtime_adj(X509_getm_notAfter(c), 24 * 3600);
        X509_set_pubkey(c, key_.get());
        X509_NAME* name = X509_get_subject_name(c);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(ip.c_str()), -1, -1, 0);
        X509_set_issuer_name(c, name);
        add_extension(NID_basic_constraints, "critical,CA:TRUE");
        add_extension(NID_key_usage, "critical,digitalSignature,keyCertSign");
        add_extension(NID_subject_alt_name, ("IP:" + ip).c_str());
        if (X509_sign(c, key_.get(), EVP_sha256()) == 0) throw std::runtime_error("certificate signing failed");
    }

    X509* certificate() const noexcept { return cert_.get(); }
    EVP_PKEY* key() const noexcept { return key_.get(); }

    std::string certificate_pem() const {
        std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
        PEM_write_bio_X509(bio.get(), cert_.get());
        char* data = nullptr;
        const long n = BIO_get_mem_data(bio.get(), &data);
        return std::string(data, static_cast<std::size_t>(n));
    }

    // Writes the certificate (never the key) to `path`, for use as a CA bundle.
    void write_certificate(const std::filesystem::path& path) const {
        std::ofstream out(path, std::ios::binary);
        out << certificate_pem();
    }

private:
    void add_extension(int nid, const char* value) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, cert_.get(), cert_.get(), nullptr, nullptr, 0);
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        if (!ext) throw std::runtime_error("bad certificate extension");
        X509_add_ext(cert_.get(), ext, -1);
        X509_EXTENSION_free(ext);
    }

    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_{nullptr, EVP_PKEY_free};
    std::unique_ptr<X509, decltype(&X509_free)> cert_{nullptr, X509_free};
};

struct ReceivedRequest {
    std::string head;  // request line and headers exactly as received, up to and including the blank line
    std::string method;
    std::string target;
    Headers headers;
    std::string body;
    std::optional<std::string> header(std::string_view name) const { return find_header(headers, name); }
};

struct CannedResponse {
    int status = 200;
    std::string reason = "OK";
    Headers headers;
    std::string body;
    std::chrono::milliseconds delay{0};  // wait this long before answering
    bool never_answer = false;           // keep the connection open and silent until the server stops
};

class LoopbackServer {
public:
    using Handler = std::function<CannedResponse(const ReceivedRequest&)>;

    explicit LoopbackServer(Handler handler, const TlsIdentity* tls = nullptr) : handler_(std::move(handler)) {
        std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the test process
        if (tls) {
            ctx_.reset(SSL_CTX_new(TLS_server_method()));
            if (!ctx_ || SSL_CTX_use_certificate(ctx_.get(), tls->certificate()) != 1 ||
                SSL_CTX_use_PrivateKey(ctx_.get(), tls->key()) != 1)
                throw std::runtime_error("cannot set up the TLS server context");
        }
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (listen_fd_ < 0) throw std::runtime_error("socket() failed");
        int one = 1;
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;  // the OS picks a free port, so tests can run in parallel
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 64) != 0)
            throw std::runtime_error("bind/listen on 127.0.0.1 failed");
        socklen_t len = sizeof addr;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }

    ~LoopbackServer() { stop(); }
    LoopbackServer(const LoopbackServer&) = delete;
    LoopbackServer& operator=(const LoopbackServer&) = delete;

    // Closes every connection (waking silent handlers) and joins all threads.
    void stop() {
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
            stopping_ = true;
            for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
        }
        stopped_.notify_all();
        ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept() on Linux
        if (acceptor_.joinable()) acceptor_.join();
        std::vector<std::thread> workers;
        {
            std::lock_guard lock(mutex_);
            workers.swap(workers_);
        }
        for (auto& t : workers) t.join();
        ::close(listen_fd_);
    }

    int port() const noexcept { return port_; }
    std::string base_url() const { return std::string(ctx_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_); }
    int accepted_connections() const noexcept { return accepted_.load(); }
    std::vector<ReceivedRequest> requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }

private:
    struct Connection {
        int fd = -1;
        SSL* ssl = nullptr;
        long read(char* buf, std::size_t n) {
            if (ssl) return SSL_read(ssl, buf, static_cast<int>(n));
            return ::recv(fd, buf, n, 0);
        }
        bool write_all(const std::string& data) {
            std::size_t done = 0;
            while (done < data.size()) {
                long n = ssl ? SSL_write(ssl, data.data() + done, static_cast<int>(data.size() - done))
                             : ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
                if (n <= 0) return false;
                done += static_cast<std::size_t>(n);
            }
            return true;
        }
    };

    void accept_loop() {
        for (;;) {
            int fd = ::accept(listen_fd_, nullptr, nullptr);
            if (fd < 0) return;  // the listening socket was shut down
            std::lock_guard lock(mutex_);
            if (stopping_) {
                ::close(fd);
                return;
            }
            ++accepted_;
            open_fds_.push_back(fd);
            workers_.emplace_back([this, fd] { serve(fd); });
        }
    }

    void serve(int fd) {
        Connection conn{fd, nullptr};
        if (ctx_) {
            conn.ssl = SSL_new(ctx_.get());
            SSL_set_fd(conn.ssl, fd);
            if (SSL_accept(conn.ssl) != 1) ERR_clear_error();  // e.g. the client refused our certificate
            else serve_requests(conn);
            SSL_free(conn.ssl);
        } else {
            serve_requests(conn);
        }
        std::lock_guard lock(mutex_);
        std::erase(open_fds_, fd);
        ::close(fd);
    }

    // Keep-alive: answers requests on one connection until the client closes it.
    void serve_requests(Connection& conn) {
        std::string buffer;
        char chunk[16384];
        for (;;) {
            std::size_t head_end;
            while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
                long n = conn.read(chunk, sizeof chunk);
                if (n <= 0) return;
                buffer.append(chunk, static_cast<std::size_t>(n));
            }
            ReceivedRequest req;
            req.head = buffer.substr(0, head_end + 4);
            parse_head(req);
            std::size_t content_length = 0;
            if (auto cl = req.header("Content-Length")) content_length = std::stoul(*cl);
            while (buffer.size() < head_end + 4 + content_length) {
                long n = conn.read(chunk, sizeof chunk);
                if (n <= 0) return;
                buffer.append(chunk, static_cast<std::size_t>(n));
            }
            req.body = buffer.substr(head_end + 4, content_length);
            buffer.erase(0, head_end + 4 + content_length);
            {
                std::lock_guard lock(mutex_);
                requests_.push_back(req);
            }
            CannedResponse answer = handler_(req);
            {
                std::unique_lock lock(mutex_);
                if (answer.never_answer) {
                    stopped_.wait(lock, [this] { return stopping_; });
                    return;
                }
                if (answer.delay.count() > 0 && stopped_.wait_for(lock, answer.delay, [this] { return stopping_; }))
                    return;
            }
            if (!conn.write_all(render(answer, req.method == "HEAD"))) return;
        }
    }

    static void parse_head(ReceivedRequest& req) {
        std::size_t line_end = req.head.find("\r\n");
        const std::string request_line = req.head.substr(0, line_end);
        const auto sp1 = request_line.find(' ');
        const auto sp2 = request_line.find(' ', sp1 + 1);
        req.method = request_line.substr(0, sp1);
        req.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
        std::size_t pos = line_end + 2;
        while (pos < req.head.size()) {
            const auto end = req.head.find("\r\n", pos);
            if (end == pos || end == std::string::npos) break;
            const std::string line = req.head.substr(pos, end - pos);
            const auto colon = line.find(':');
            std::string value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.erase(0, 1);
            req.headers.emplace_back(line.substr(0, colon), value);
            pos = end + 2;
        }
    }

    static std::string render(const CannedResponse& answer, bool head_request) {
        std::string out = "HTTP/1.1 " + std::to_string(answer.status) + " " + answer.reason + "\r\n";
        for (const auto& [name, value] : answer.headers) out += name + ": " + value + "\r\n";
        // A chunked body (Transfer-Encoding set by the handler) carries its own framing.
        if (!find_header(answer.headers, "Content-Length") && !find_header(answer.headers, "Transfer-Encoding"))
            out += "Content-Length: " + std::to_string(answer.body.size()) + "\r\n";
        out += "\r\n";
        if (!head_request) out += answer.body;
        return out;
    }

    Handler handler_;
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_{nullptr, SSL_CTX_free};
    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<int> accepted_{0};
    mutable std::mutex mutex_;
    std::condition_variable stopped_;
    bool stopping_ = false;
    std::vector<int> open_fds_;
    std::vector<std::thread> workers_;
    std::vector<ReceivedRequest> requests_;
    std::thread acceptor_;
};

}  // namespace opnc::testing
