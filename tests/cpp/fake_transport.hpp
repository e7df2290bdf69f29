#pragma once
// A scripted Transport for unit tests: answers requests from a queue of canned responses (or a
// handler function) and records every request it was sent, exactly as it would go on the wire.
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "opnc/transport.hpp"

namespace opnc::testing {

struct RecordedRequest {
    std::string method;
    std::string url;
    Headers headers;
    std::string body;
    std::string authorization;  // the Authorization header value as it would be sent, or ""
};

class FakeTransport : public Transport {
public:
    using Answer = std::expected<HttpResponse, TransportError>;
    using Handler = std::function<Answer(const HttpRequest&)>;

    // Answers with `handler` when set; otherwise pops the next queued answer (a 599 when empty).
    Handler handler;

    void push(int status, std::string body, Headers headers = {{"Content-Type", "application/json"}}) {
        HttpResponse r;
        r.status = status;
        r.body = std::move(body);
        r.headers = std::move(headers);
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(r));
    }
    void push_error(TransportError::Kind kind, bool maybe_delivered = true) {
        TransportError e;
        e.kind = kind;
        e.message = "scripted transport error";
        e.maybe_delivered = maybe_delivered;
        std::lock_guard lock(mutex_);
        queue_.push_back(std::unexpected(e));
    }

    Answer send(const HttpRequest& request) override {
        RecordedRequest rec{request.method, request.url, request.headers, request.body, {}};
        if (auto auth = request.authorization()) rec.authorization = auth->expose();
        {
            std::lock_guard lock(mutex_);
            requests_.push_back(rec);
        }
        if (handler) return handler(request);
        std::lock_guard lock(mutex_);
        if (queue_.empty()) {
            HttpResponse r;
            r.status = 599;
            r.body = "no scripted answer left";
            return r;
        }
        Answer a = std::move(queue_.front());
        queue_.pop_front();
        return a;
    }

    std::vector<RecordedRequest> requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    std::size_t count() const {
        std::lock_guard lock(mutex_);
        return requests_.size();
    }

private:
    mutable std::mutex mutex_;
    std::deque<Answer> queue_;
    std::vector<RecordedRequest> requests_;
};

}  // namespace opnc::testing
