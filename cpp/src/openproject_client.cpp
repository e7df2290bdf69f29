#include "opnc/openproject_client.hpp"

#include <algorithm>

#include "opnc/json_read.hpp"

namespace opnc {

using json_read::Call;
using json_read::Json;

struct OpenProjectClient::Answer {
    Call call;
    HttpResponse response;
};

namespace {

constexpr std::size_t max_name_length = 255;  // OpenProject's limit for storage names and OAuth values

bool ends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// Characters, not bytes: OpenProject counts the length of the Ruby string.
std::size_t utf8_length(std::string_view text) {
    return static_cast<std::size_t>(
        std::count_if(text.begin(), text.end(), [](unsigned char c) { return (c & 0xC0) != 0x80; }));
}

std::string short_identifier(std::string_view identifier) {
    if (identifier.starts_with(op_urn::error_prefix)) identifier.remove_prefix(op_urn::error_prefix.size());
    return std::string(identifier);
}

// Both spellings are possible: the contract expects "...EnterpriseTokenMissing", the code of
// opf/openproject (lib/api/errors/enterprise_token_missing.rb) renders "MissingEnterpriseToken".
bool is_enterprise_identifier(std::string_view identifier) {
    return ends_with(identifier, "EnterpriseTokenMissing") || ends_with(identifier, "MissingEnterpriseToken");
}

bool is_host_attribute(std::string_view attribute) { return attribute == "host" || attribute == "origin"; }
bool is_method_attribute(std::string_view attribute) {
    return attribute == "authenticationMethod" || attribute == "authentication_method";
}

// One error, or every error of a MultipleErrors (contract §11). OpenProject nests one level; the
// depth limit keeps a hostile answer from exhausting the stack.
void collect_violations(const Json& error, std::vector<ConstraintViolation>& out, std::vector<std::string>& messages,
                        int depth = 0) {
    if (const Json* nested = json_read::at(error, {"_embedded", "errors"}); nested && nested->is_array()) {
        if (depth < 3)
            for (const Json& child : *nested) collect_violations(child, out, messages, depth + 1);
        return;
    }
    if (auto message = json_read::string_at(error, {"message"})) messages.push_back(*message);
    auto attribute = json_read::string_at(error, {"_embedded", "details", "attribute"});
    if (!attribute) return;
    // OpenProject renders only the attribute (lib/api/errors/validation.rb); a key is read when a
    // release or the emulator adds one.
    auto key = json_read::string_at(error, {"_embedded", "details", "key"});
    if (!key) key = json_read::string_at(error, {"_embedded", "details", "errorKey"});
    out.push_back({*attribute, key.value_or("")});
}

std::string encode_violations(const std::vector<ConstraintViolation>& violations) {
    std::string out;
    for (const auto& v : violations) {
        if (!out.empty()) out += ',';
        out += v.attribute;
        if (!v.key.empty()) out += ':' + v.key;
    }
    return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) out += separator;
        out += p;
    }
    return out;
}

std::string hint_for_violations(const std::vector<ConstraintViolation>& violations) {
    std::vector<std::string> hints;
    auto add = [&](std::string hint) {
        if (std::find(hints.begin(), hints.end(), hint) == hints.end()) hints.push_back(std::move(hint));
    };
    for (const auto& v : violations) {
        if (is_host_attribute(v.attribute))
            add("OpenProject checks the Nextcloud host itself: it must be https (or loopback), reachable from the "
                "OpenProject server with a certificate trusted there, have the integration_openproject app enabled, "
                "and its web server must pass the Authorization header (see Nextcloud's check-config).");
        else if (v.attribute == "name")
            add("Choose a storage name of at most 255 characters.");
        else if (v.attribute == "password" || v.attribute == "applicationPassword")
            add("Nextcloud refused the application password of user OpenProject: issue a new one with the "
                "project-folder setup of Nextcloud, then try again.");
        else
            add("Check the value of " + v.attribute + ".");
    }
    return join(hints, " ");
}

Result<Storage> parse_storage(const Call& call, int status, const Json& body) {
    if (auto type = json_read::string_at(body, {"_type"}); type && *type != "Storage")
        return std::unexpected(json_read::protocol_error(call, status, "answered a " + *type + " where a Storage was expected."));
    Storage s;
    auto id = json_read::int_at(body, {"id"});
    if (!id) return std::unexpected(json_read::protocol_error(call, status, "a storage lacks its numeric id."));
    s.id = *id;
    auto name = json_read::string_at(body, {"name"});
    if (!name) return std::unexpected(json_read::protocol_error(call, status, "a storage lacks its name."));
    s.name = *name;
    s.host = json_read::string_at(body, {"_links", "origin", "href"});
    s.provider_type = json_read::string_at(body, {"_links", "type", "href"}).value_or("");
    s.authentication_method = json_read::string_at(body, {"_links", "authenticationMethod", "href"});
    s.configured = json_read::bool_at(body, {"configured"}).value_or(false);
    s.has_application_password = json_read::bool_at(body, {"hasApplicationPassword"});
    s.oauth_application_id = json_read::int_at(body, {"_embedded", "oauthApplication", "id"});
    s.oauth_application_client_id = json_read::string_at(body, {"_embedded", "oauthApplication", "clientId"});
    s.oauth_client_credentials_client_id =
        json_read::string_at(body, {"_embedded", "oauthClientCredentials", "clientId"});
    return s;
}

std::unexpected<Error> invalid(std::string message, std::string hint) {
    return fail(ErrorKind::invalid_input, std::move(message), std::move(hint));
}

std::optional<std::string> check_storage_name(std::string_view name) {
    if (name.empty()) return "The storage name is empty.";
    if (utf8_length(name) > max_name_length) return "The storage name is longer than 255 characters.";
    return std::nullopt;
}

bool redirect(int status) { return status >= 300 && status <= 399; }

}  // namespace

std::vector<ConstraintViolation> openproject_violations(const Error& error) {
    std::vector<ConstraintViolation> out;
    if (error.http_status != 422 || error.server_id.empty() || error.server_id.starts_with("urn:")) return out;
    std::string_view rest = error.server_id;
    while (!rest.empty()) {
        auto comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        auto colon = item.find(':');
        ConstraintViolation v;
        v.attribute = std::string(item.substr(0, colon));
        if (colon != std::string_view::npos) v.key = std::string(item.substr(colon + 1));
        out.push_back(std::move(v));
    }
    return out;
}

OpenProjectClient::OpenProjectClient(std::shared_ptr<Transport> transport, Url base, Secret api_token,
                                     OpenProjectAuth auth, std::string basic_user)
    : transport_(std::move(transport)),
      base_(std::move(base)),
      api_token_(std::move(api_token)),
      auth_(auth),
      basic_user_(basic_user.empty() ? "apikey" : std::move(basic_user)) {}

Result<OpenProjectClient::Answer> OpenProjectClient::send(std::string_view method, std::string_view path,
                                                          std::string body, bool body_holds_secret) const {
    HttpRequest request;
    request.method = std::string(method);
    request.url = base_.join(path);
    request.headers.emplace_back("Accept", "application/hal+json");
    // OpenProject enforces the content type on every request that is not GET, DELETE included
    // (406 without it, contract §1).
    if (method != "GET") request.headers.emplace_back("Content-Type", "application/json");
    if (auth_ == OpenProjectAuth::bearer)
        request.bearer = api_token_;
    else
        request.basic = BasicAuth{basic_user_, api_token_};
    request.body = std::move(body);

    Answer answer{Call{"OpenProject", base_.authority(), std::string(method), base_.path() + std::string(path)}, {}};
    auto result = transport_->send(request);
    if (body_holds_secret) json_read::scrub(request.body);
    if (!result) return std::unexpected(json_read::transport_error(answer.call, result.error()));
    answer.response = std::move(*result);
    return answer;
}

Error OpenProjectClient::answer_error(const Answer& answer) const {
    const HttpResponse& response = answer.response;
    const int status = response.status;
    if (redirect(status)) return json_read::redirect_error(answer.call, response);

    Json body = json_read::looks_like_html(response) ? Json{} : Json::parse(response.body, nullptr, false);
    if (body.is_discarded()) body = Json{};
    const std::string identifier = json_read::string_at(body, {"errorIdentifier"}).value_or("");
    const std::string short_id = short_identifier(identifier);

    Error e;
    e.http_status = status;
    e.server_id = identifier;
    e.server_message = json_read::string_at(body, {"message"}).value_or("");
    const std::string where = answer.call.describe();

    if (is_enterprise_identifier(identifier)) {
        e.kind = ErrorKind::enterprise_required;
        e.message = where + " requires an Enterprise token for this.";
        e.hint = "Two-way OAuth 2.0 needs an OpenProject Enterprise token (Corporate plan) on this release: add it "
                 "under Administration > Enterprise edition, then run again.";
        return e;
    }
    switch (status) {
        case 401:
            e.kind = ErrorKind::unauthenticated;
            e.message = where + " refused the API token (HTTP 401).";
            e.hint = auth_ == OpenProjectAuth::bearer
                         ? "Check the API token (My account > Access tokens); releases before Bearer API tokens "
                           "need the default Basic apikey authentication."
                         : "Check the API token (My account > Access tokens); it must belong to an active "
                           "administrator.";
            return e;
        case 403:
            e.kind = ErrorKind::forbidden;
            e.message = where + " refused the call: the API token's user lacks the permission (HTTP 403" +
                        (short_id.empty() ? "" : ", " + short_id) + ").";
            e.hint = "Use an API token of an active OpenProject administrator.";
            return e;
        case 404:
            e.kind = ErrorKind::not_found;
            e.message = where + ": the resource does not exist or is not visible to the API token's user (HTTP 404).";
            e.hint = "Check the id, and that the URL is OpenProject's root URL (including any sub-path).";
            return e;
        case 406:
        case 415:
        case 400:
            e.kind = ErrorKind::protocol;
            e.message = where + " did not accept the request's format (HTTP " + std::to_string(status) +
                        (short_id.empty() ? "" : ", " + short_id) + ").";
            e.hint = "A proxy in front of OpenProject may alter requests (Content-Type, body); otherwise this is a "
                     "bug in opnc.";
            return e;
        case 409:
            e.kind = ErrorKind::conflict;
            e.message = where + " reported a conflict (HTTP 409).";
            e.hint = "Another change happened at the same time; run again.";
            return e;
        case 422: {
            std::vector<ConstraintViolation> violations;
            std::vector<std::string> messages;
            collect_violations(body, violations, messages);
            e.server_message = join(messages, " ");
            if (!violations.empty()) e.server_id = encode_violations(violations);
            // We only ever send the Two-way OAuth 2.0 URN, which every release knows: a refusal of the
            // method is the Enterprise gate (contract §17), whatever key the release renders.
            const bool enterprise = std::any_of(violations.begin(), violations.end(), [](const auto& v) {
                return v.key == "enterprise_plan_required" || (is_method_attribute(v.attribute) && v.key.empty());
            });
            if (enterprise) {
                e.kind = ErrorKind::enterprise_required;
                e.message = where + " refuses Two-way OAuth 2.0 without an Enterprise token (HTTP 422).";
                e.hint = "Two-way OAuth 2.0 needs an OpenProject Enterprise token (Corporate plan) on this release: "
                         "add it under Administration > Enterprise edition, then run again.";
                return e;
            }
            std::vector<std::string> named;
            for (const auto& v : violations) named.push_back(v.key.empty() ? v.attribute : v.attribute + " (" + v.key + ")");
            const bool taken = std::any_of(violations.begin(), violations.end(), [](const auto& v) { return v.key == "taken"; });
            e.kind = taken ? ErrorKind::conflict : ErrorKind::validation;
            e.message = where + " refused the values" + (named.empty() ? "" : " of " + join(named, ", ")) + " (HTTP 422).";
            e.hint = named.empty() ? "See the server message for the refused value." : hint_for_violations(violations);
            return e;
        }
        case 429:
            e.kind = ErrorKind::server_error;
            e.message = where + " is rate limiting the requests (HTTP 429).";
            e.hint = "Wait a moment and run again.";
            return e;
        default:
            break;
    }
    if (status >= 500) {
        e.kind = ErrorKind::server_error;
        e.message = where + " failed (HTTP " + std::to_string(status) + (short_id.empty() ? "" : ", " + short_id) + ").";
        e.hint = "Check OpenProject's log (and its access to Nextcloud); run again once it is healthy.";
        return e;
    }
    e.kind = ErrorKind::protocol;
    e.message = where + " answered with the unexpected HTTP status " + std::to_string(status) + ".";
    e.hint = "Check that the URL points at OpenProject itself.";
    return e;
}

void OpenProjectClient::mark_uniqueness_violations(Error& error, std::string_view name, const std::optional<Url>& host,
                                                   std::optional<std::int64_t> self) const {
    auto violations = openproject_violations(error);
    const bool name_refused = std::any_of(violations.begin(), violations.end(),
                                          [](const auto& v) { return v.key.empty() && v.attribute == "name"; });
    const bool host_refused = std::any_of(violations.begin(), violations.end(),
                                          [](const auto& v) { return v.key.empty() && is_host_attribute(v.attribute); });
    if (!name_refused && !host_refused) return;
    auto storages = list_storages();
    if (!storages) return;  // keep the original validation error: it is still true
    bool name_taken = false, host_taken = false;
    std::optional<std::int64_t> holder;
    for (const Storage& s : *storages) {
        if (self && s.id == *self) continue;
        if (name_refused && !name.empty() && s.name == name) {
            name_taken = true;
            holder = holder.value_or(s.id);
        }
        if (host_refused && host && s.host) {
            auto existing = Url::parse(*s.host);
            if (existing && *existing == *host) {
                host_taken = true;
                holder = holder.value_or(s.id);
            }
        }
    }
    if (!name_taken && !host_taken) return;
    std::vector<std::string> named;
    for (auto& v : violations) {
        if (v.key.empty() && ((v.attribute == "name" && name_taken) || (is_host_attribute(v.attribute) && host_taken)))
            v.key = "taken";
        named.push_back(v.key.empty() ? v.attribute : v.attribute + " (" + v.key + ")");
    }
    error.server_id = encode_violations(violations);
    error.kind = ErrorKind::conflict;
    error.message = "OpenProject at " + base_.authority() + " already has a storage with this " +
                    (name_taken && host_taken ? "name and host" : name_taken ? "name" : "host") + " (storage " +
                    std::to_string(*holder) + "; refused: " + join(named, ", ") + ").";
    error.hint = "OpenProject shows a storage's OAuth secret only once: continue with the journal of the run that "
                 "created it, or delete storage " + std::to_string(*holder) +
                 " (this removes its file links) and set the integration up again.";
}

Result<OpenProjectRoot> OpenProjectClient::root() const {
    auto answer = send("GET", "/api/v3");
    if (!answer) return std::unexpected(answer.error());
    const int status = answer->response.status;
    if (status != 200) return std::unexpected(answer_error(*answer));
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    if (auto type = json_read::string_at(*body, {"_type"}); type != "Root")
        return std::unexpected(json_read::protocol_error(answer->call, status, "the answer is not an API v3 Root."));
    OpenProjectRoot root;
    auto name = json_read::required_string(answer->call, status, *body, {"instanceName"}, "instanceName");
    if (!name) return std::unexpected(name.error());
    root.instance_name = *name;
    if (auto text = json_read::string_at(*body, {"coreVersion"})) {
        auto version = Version::parse(*text);
        if (!version)
            return std::unexpected(json_read::protocol_error(answer->call, status, "coreVersion is not a version number."));
        root.core_version = *version;
    }
    return root;
}

Result<OpenProjectConfiguration> OpenProjectClient::configuration() const {
    auto answer = send("GET", "/api/v3/configuration");
    if (!answer) return std::unexpected(answer.error());
    const int status = answer->response.status;
    if (status != 200) return std::unexpected(answer_error(*answer));
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    if (auto type = json_read::string_at(*body, {"_type"}); type != "Configuration")
        return std::unexpected(json_read::protocol_error(answer->call, status, "the answer is not a Configuration."));
    OpenProjectConfiguration configuration;
    configuration.host_name = json_read::string_at(*body, {"hostName"});
    if (const Json* flags = json_read::at(*body, {"activeFeatureFlags"}); flags && flags->is_array())
        for (const Json& flag : *flags)
            if (flag.is_string()) configuration.active_feature_flags.push_back(flag.get<std::string>());
    return configuration;
}

Result<OpenProjectUser> OpenProjectClient::me() const {
    auto answer = send("GET", "/api/v3/users/me");
    if (!answer) return std::unexpected(answer.error());
    const int status = answer->response.status;
    if (status != 200) return std::unexpected(answer_error(*answer));
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    if (auto type = json_read::string_at(*body, {"_type"}); type != "User")
        return std::unexpected(json_read::protocol_error(answer->call, status, "the answer is not a User."));
    OpenProjectUser user;
    auto id = json_read::int_at(*body, {"id"});
    if (!id) return std::unexpected(json_read::protocol_error(answer->call, status, "the user lacks its numeric id."));
    user.id = *id;
    user.name = json_read::string_at(*body, {"name"}).value_or("");
    user.login = json_read::string_at(*body, {"login"});
    user.admin = json_read::bool_at(*body, {"admin"});
    user.status = json_read::string_at(*body, {"status"});
    return user;
}

Result<std::vector<Storage>> OpenProjectClient::list_storages() const {
    auto answer = send("GET", "/api/v3/storages");
    if (!answer) return std::unexpected(answer.error());
    const int status = answer->response.status;
    if (status != 200) return std::unexpected(answer_error(*answer));
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    const Json* elements = json_read::at(*body, {"_embedded", "elements"});
    if (!elements || !elements->is_array())
        return std::unexpected(
            json_read::protocol_error(answer->call, status, "the answer is not a collection (_embedded.elements)."));
    std::vector<Storage> storages;
    storages.reserve(elements->size());
    for (const Json& element : *elements) {
        auto storage = parse_storage(answer->call, status, element);
        if (!storage) return std::unexpected(storage.error());
        storages.push_back(std::move(*storage));
    }
    return storages;
}

Result<Storage> OpenProjectClient::get_storage(std::int64_t id) const {
    auto answer = send("GET", "/api/v3/storages/" + std::to_string(id));
    if (!answer) return std::unexpected(answer.error());
    const int status = answer->response.status;
    if (status != 200) {
        Error e = answer_error(*answer);
        if (e.kind == ErrorKind::not_found) {
            e.message = "OpenProject at " + base_.authority() + " has no storage " + std::to_string(id) +
                        " visible to the API token's user (HTTP 404).";
            e.hint = "The storage was deleted, or the token belongs to a user who is not an administrator.";
        }
        return std::unexpected(std::move(e));
    }
    auto body = json_read::parse_body(answer->call, answer->response);
    if (!body) return std::unexpected(body.error());
    return parse_storage(answer->call, status, *body);
}

Result<CreatedStorage> OpenProjectClient::create_storage(std::string_view name, const Url& host) const {
    if (auto problem = check_storage_name(name)) return invalid(*problem, "Pass a name of 1 to 255 characters.");
    // The exact two-way body of contract §3.1. applicationPassword is always explicit: the default
    // of an omitted one is unverified; the real app password follows with PATCH.
    nlohmann::ordered_json request = {
        {"name", name},
        {"applicationPassword", ""},
        {"_links",
         {{"origin", {{"href", host.str()}}},
          {"type", {{"href", op_urn::nextcloud_provider}}},
          {"authenticationMethod", {{"href", op_urn::two_way_oauth2}}}}}};
    auto serialized = json_read::serialize(request);
    if (!serialized) return std::unexpected(serialized.error());
    auto answer = send("POST", "/api/v3/storages", std::move(*serialized));
    if (!answer) return std::unexpected(answer.error());
    const int status = answer->response.status;
    if (status != 201 && status != 200) {
        Error e = answer_error(*answer);
        if (status == 422 && e.kind != ErrorKind::enterprise_required)
            mark_uniqueness_violations(e, name, host, std::nullopt);
        return std::unexpected(std::move(e));
    }
    auto body = json_read::parse_body(answer->call, answer->response);
    json_read::scrub(answer->response.body);
    if (!body) return std::unexpected(body.error());
    auto storage = parse_storage(answer->call, status, *body);
    auto client_id = json_read::string_at(*body, {"_embedded", "oauthApplication", "clientId"});
    auto client_secret = json_read::string_at(*body, {"_embedded", "oauthApplication", "clientSecret"});
    json_read::scrub(*body);
    if (!storage) return std::unexpected(storage.error());
    if (!client_id || client_id->empty() || !client_secret || client_secret->empty()) {
        if (client_secret) json_read::scrub(*client_secret);
        Error e = json_read::protocol_error(
            answer->call, status,
            "storage " + std::to_string(storage->id) +
                " was created, but the answer lacks the one-time OAuth client id or secret of its OAuth application.",
            "OpenProject shows the secret only in this answer: delete storage " + std::to_string(storage->id) +
                " and run again (a proxy that rewrites answers can cause this).");
        return std::unexpected(std::move(e));
    }
    CreatedStorage created{std::move(*storage), std::move(*client_id), Secret(std::move(*client_secret))};
    return created;
}

Result<Storage> OpenProjectClient::update_storage(std::int64_t id, const StorageChanges& changes) const {
    if (!changes.name && !changes.host && !changes.application_password)
        return invalid("Nothing to change in storage " + std::to_string(id) + ".",
                       "Set a name, a host or the application password.");
    if (changes.name)
        if (auto problem = check_storage_name(*changes.name)) return invalid(*problem, "Pass a name of 1 to 255 characters.");
    nlohmann::ordered_json request = nlohmann::ordered_json::object();
    if (changes.name) request["name"] = *changes.name;
    if (changes.application_password) request["applicationPassword"] = changes.application_password->expose();
    if (changes.host) request["_links"] = {{"origin", {{"href", changes.host->str()}}}};
    auto body = json_read::serialize(request);
    if (changes.application_password) json_read::scrub(request["applicationPassword"].get_ref<std::string&>());
    if (!body) return std::unexpected(body.error());

    auto answer = send("PATCH", "/api/v3/storages/" + std::to_string(id), std::move(*body),
                       changes.application_password.has_value());
    if (!answer) return std::unexpected(answer.error());
    const int status = answer->response.status;
    if (status != 200) {
        Error e = answer_error(*answer);
        if (status == 422 && e.kind != ErrorKind::enterprise_required && (changes.name || changes.host))
            mark_uniqueness_violations(e, changes.name.value_or(""), changes.host, id);
        return std::unexpected(std::move(e));
    }
    auto body_json = json_read::parse_body(answer->call, answer->response);
    if (!body_json) return std::unexpected(body_json.error());
    return parse_storage(answer->call, status, *body_json);
}

Result<Storage> OpenProjectClient::update_storage_application_password(std::int64_t id,
                                                                       const std::optional<Secret>& password) const {
    StorageChanges changes;
    changes.application_password = password.value_or(Secret{});
    return update_storage(id, changes);
}

Result<void> OpenProjectClient::delete_storage(std::int64_t id) const {
    auto answer = send("DELETE", "/api/v3/storages/" + std::to_string(id));
    if (!answer) return std::unexpected(answer.error());
    const int status = answer->response.status;
    if (status == 204 || status == 200) return {};
    Error e = answer_error(*answer);
    if (e.kind == ErrorKind::not_found) {
        e.message = "OpenProject at " + base_.authority() + " has no storage " + std::to_string(id) +
                    " to delete (HTTP 404).";
        e.hint = "It is already gone, or the API token's user is not an administrator.";
    }
    return std::unexpected(std::move(e));
}

Result<StoredOAuthClient> OpenProjectClient::set_oauth_client_credentials(std::int64_t id, std::string_view client_id,
                                                                          const Secret& client_secret) const {
    if (client_id.empty() || utf8_length(client_id) > max_name_length)
        return invalid("The Nextcloud OAuth client id must have 1 to 255 characters.",
                       "Pass the nextcloud_client_id that Nextcloud's /setup answered.");
    if (client_secret.empty() || utf8_length(client_secret.expose()) > max_name_length)
        return invalid("The Nextcloud OAuth client secret must have 1 to 255 characters.",
                       "Pass the nextcloud_client_secret that Nextcloud's /setup answered.");
    nlohmann::ordered_json request = {{"clientId", client_id}, {"clientSecret", client_secret.expose()}};
    auto body = json_read::serialize(request);
    json_read::scrub(request["clientSecret"].get_ref<std::string&>());
    if (!body) return std::unexpected(body.error());

    auto answer = send("POST", "/api/v3/storages/" + std::to_string(id) + "/oauth_client_credentials",
                       std::move(*body), /*body_holds_secret=*/true);
    if (!answer) return std::unexpected(answer.error());
    const int status = answer->response.status;
    if (status != 201 && status != 200) return std::unexpected(answer_error(*answer));
    auto parsed = json_read::parse_body(answer->call, answer->response);
    if (!parsed) return std::unexpected(parsed.error());
    // The code answers OAuthClientCredentials; the path docs claim a Storage (contract §8).
    const std::string type = json_read::string_at(*parsed, {"_type"}).value_or("");
    StoredOAuthClient stored;
    if (type == "OAuthClientCredentials") {
        stored.id = json_read::int_at(*parsed, {"id"});
        stored.client_id = json_read::string_at(*parsed, {"clientId"}).value_or("");
    } else if (type == "Storage") {
        stored.id = json_read::int_at(*parsed, {"_embedded", "oauthClientCredentials", "id"});
        stored.client_id = json_read::string_at(*parsed, {"_embedded", "oauthClientCredentials", "clientId"}).value_or("");
    } else {
        return std::unexpected(json_read::protocol_error(
            answer->call, status, "the answer is neither OAuthClientCredentials nor a Storage."));
    }
    if (stored.client_id.empty())
        return std::unexpected(json_read::protocol_error(answer->call, status, "the answer lacks the stored clientId."));
    return stored;
}

}  // namespace opnc
