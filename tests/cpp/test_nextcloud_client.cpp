// NextcloudClient against a scripted transport: the exact requests (contract/nextcloud.md §1.2,
// §2, §3), the observed answers of Nextcloud 34.0.1 / integration_openproject 3.1.1 as fixtures
// (PHP's escaping included: \/ and \u003C), and every error row these calls can meet (§1.3, §4, §8).
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fake_transport.hpp"
#include "opnc/nextcloud_client.hpp"

using namespace opnc;
using opnc::testing::FakeTransport;
using opnc::testing::RecordedRequest;

namespace {

const Headers app_json = {{"Content-Type", "application/json; charset=utf-8"}};
const Headers html = {{"Content-Type", "text/html; charset=UTF-8"}};
constexpr const char* admin_basic = "Basic YWRtaW46bmMtcGFzcw==";  // base64("admin:nc-pass")
const std::string client_id = "Vq3XoB1tHn7sLk2PdR9eWm4cZa6yFg8jUi0QbTw5NrEvMx1KpSlDhGfCy2Ju3OnAz";
const std::string client_secret = "p0O9i8U7y6T5r4E3w2Q1aSdFgHjKlZxCvBnMmNbVcXzLkJhGfDsApOiUyTrEwQ12";
// 72 characters as observed: symbols included, shown here JSON-escaped as PHP sends them.
const std::string app_password_json = R"(a\"b\\c\/d\u003Ce\u003Ef$g|h`i&j#kLmNoPqRsTuVwXyZ0123456789abcdefghijklmnopqrstuvwxyz)";
const std::string app_password = R"(a"b\c/d<e>f$g|h`i&j#kLmNoPqRsTuVwXyZ0123456789abcdefghijklmnopqrstuvwxyz)";

Url url(const char* text) {
    auto parsed = Url::parse(text);
    REQUIRE(parsed.has_value());
    return *parsed;
}

struct Fixture {
    std::shared_ptr<FakeTransport> fake = std::make_shared<FakeTransport>();
    NextcloudClient client{fake, url("https://nc.example/nextcloud"), "admin", Secret("nc-pass"),
                           std::chrono::seconds(150)};
};

std::string header_of(const RecordedRequest& r, const char* name) {
    return find_header(r.headers, name).value_or("<absent>");
}

void check_common_headers(const RecordedRequest& r) {
    CHECK(header_of(r, "Accept") == "application/json");
    CHECK(header_of(r, "OCS-APIRequest") == "true");
}

std::string post_answer(bool with_status, bool with_app_password) {
    std::string body = "{";
    if (with_status) body += R"("status":true,)";
    body += R"("nextcloud_oauth_client_name":"OpenProject client","openproject_redirect_uri":"http:\/\/127.0.0.1:9999\/oauth_clients\/)" +
            client_id + R"(\/callback","nextcloud_client_id":")" + client_id + R"(","nextcloud_client_secret":")" + client_secret + "\"";
    if (with_app_password) body += R"(,"openproject_user_app_password":")" + app_password_json + "\"";
    return body + "}";
}

SetupValues full_values(bool project_folder) {
    SetupValues v;
    v.openproject_url = url("http://127.0.0.1:9999");
    v.openproject_client_id = "kU1pQ0Xr8fW2sLh5Zc7mVb3nTj9yGa4eDo6iRq0wPx1";
    v.openproject_client_secret = Secret("Xs9vQ2mK7pL0aR4tY8uW1eZ3cB6nD5fG2hJ9kM0qS7v");
    v.default_enable_navigation = false;
    v.default_enable_unified_search = false;
    v.setup_project_folder = project_folder;
    v.setup_app_password = project_folder;
    return v;
}

const Version app_3_1_1 = Version::of(3, 1, 1);

}  // namespace

TEST_CASE("NextcloudClient::status reads status.php", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, R"({"installed":true,"maintenance":false,"needsDbUpgrade":false,"version":"34.0.1.2","versionstring":"34.0.1","edition":"","productname":"Nextcloud","extendedSupport":false})");
    auto status = f.client.status();
    REQUIRE(status.has_value());
    CHECK(status->installed);
    CHECK_FALSE(status->maintenance);
    CHECK_FALSE(status->needs_db_upgrade);
    CHECK(status->version == "34.0.1.2");
    CHECK(status->versionstring == "34.0.1");
    CHECK(status->productname == "Nextcloud");
    CHECK(status->ready());

    auto requests = f.fake->requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].method == "GET");
    CHECK(requests[0].url == "https://nc.example/nextcloud/status.php");
    CHECK(requests[0].authorization.empty());  // public: no credentials to count as failed logins
    check_common_headers(requests[0]);

    f.fake->push(200, R"({"installed":true,"maintenance":true,"needsDbUpgrade":false,"version":"34.0.1.2","versionstring":"34.0.1"})");
    auto maintenance = f.client.status();
    REQUIRE(maintenance.has_value());
    CHECK_FALSE(maintenance->ready());

    f.fake->push(200, R"({"status":"ok"})");
    auto other = f.client.status();
    REQUIRE_FALSE(other.has_value());
    CHECK(other.error().kind == ErrorKind::protocol);
}

TEST_CASE("NextcloudClient::capabilities reads the server and app versions", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, R"({"ocs":{"meta":{"status":"ok","statuscode":200,"message":"OK"},
 "data":{"version":{"major":34,"minor":0,"micro":1,"string":"34.0.1","edition":"","extendedSupport":false},
         "capabilities":{"core":{"pollinterval":60,"webdav-root":"remote.php\/webdav"},"integration_openproject":{"app_version":"3.1.1","groupfolder_version":"22.0.6","groupfolders_enabled":true}}}}})",
                 app_json);
    auto caps = f.client.capabilities();
    REQUIRE(caps.has_value());
    CHECK(caps->server_version == Version::of(34, 0, 1));
    CHECK(caps->server_version.major() == 34);
    CHECK(caps->server_version_string == "34.0.1");
    REQUIRE(caps->app_version.has_value());
    CHECK(*caps->app_version == Version::of(3, 1, 1));
    CHECK(caps->groupfolders_enabled == std::optional<bool>(true));
    CHECK(caps->groupfolder_version == std::optional<std::string>("22.0.6"));

    auto requests = f.fake->requests();
    CHECK(requests[0].url == "https://nc.example/nextcloud/ocs/v2.php/cloud/capabilities?format=json");
    CHECK(requests[0].authorization.empty());
    check_common_headers(requests[0]);

    SECTION("without the app block (app disabled or older than 2.4.3)") {
        f.fake->push(200, R"({"ocs":{"meta":{"status":"ok","statuscode":200,"message":"OK"},"data":{"version":{"major":30,"minor":0,"micro":5,"string":"30.0.5"},"capabilities":{"core":{}}}}})", app_json);
        auto c = f.client.capabilities();
        REQUIRE(c.has_value());
        CHECK(c->server_version == Version::of(30, 0, 5));
        CHECK_FALSE(c->app_version.has_value());
        CHECK_FALSE(c->groupfolders_enabled.has_value());
    }
    SECTION("groupfolders missing") {
        f.fake->push(200, R"({"ocs":{"data":{"version":{"major":34,"minor":0,"micro":1,"string":"34.0.1"},"capabilities":{"integration_openproject":{"app_version":"2.8.1-beta1","groupfolder_version":"","groupfolders_enabled":false}}}}})", app_json);
        auto c = f.client.capabilities();
        REQUIRE(c.has_value());
        CHECK(c->app_version->prerelease() == "beta1");
        CHECK(*c->app_version < Version::of(2, 9, 0));
        CHECK(c->groupfolders_enabled == std::optional<bool>(false));
        CHECK(c->groupfolder_version == std::optional<std::string>(""));
    }
    SECTION("no version.major: not a Nextcloud server") {
        f.fake->push(200, R"({"ocs":{"data":[]}})", app_json);
        auto c = f.client.capabilities();
        REQUIRE_FALSE(c.has_value());
        CHECK(c.error().kind == ErrorKind::protocol);
        CHECK(c.error().message.find("not a Nextcloud server") != std::string::npos);
    }
    SECTION("412 CSRF check failed (a proxy dropped OCS-APIRequest)") {
        f.fake->push(412, R"({"message":"CSRF check failed"})", app_json);
        auto c = f.client.capabilities();
        REQUIRE_FALSE(c.has_value());
        CHECK(c.error().kind == ErrorKind::protocol);
        CHECK(c.error().http_status == 412);
        CHECK(c.error().server_message == "CSRF check failed");
        CHECK(c.error().hint.find("OCS-APIRequest") != std::string::npos);
    }
}

TEST_CASE("NextcloudClient::check_config tells whether the Authorization header got through", "[nextcloud]") {
    Fixture f;
    std::string mode = "echo";
    f.fake->handler = [&](const HttpRequest& request) -> FakeTransport::Answer {
        HttpResponse r;
        r.status = 200;
        r.headers = app_json;
        const std::string sent = request.authorization() ? request.authorization()->expose() : "";
        if (mode == "echo")
            r.body = R"({"user_id":"","authorization_header":")" + sent + R"("})";
        else if (mode == "stripped")
            r.body = R"({"user_id":"","authorization_header":null})";
        else if (mode == "rewritten")
            r.body = R"({"user_id":"","authorization_header":"Bearer TESTBEARERTOKEN"})";
        else
            r.body = R"({"user_id":""})";
        return r;
    };
    auto echoed = f.client.check_config();
    REQUIRE(echoed.has_value());
    CHECK(echoed->authorization_header == AuthorizationHeaderEcho::unchanged);
    CHECK(echoed->user_id.empty());

    mode = "stripped";
    auto stripped = f.client.check_config();
    REQUIRE(stripped.has_value());
    CHECK(stripped->authorization_header == AuthorizationHeaderEcho::missing);
    CHECK(to_string(stripped->authorization_header) == "missing");

    mode = "rewritten";
    auto rewritten = f.client.check_config();
    REQUIRE(rewritten.has_value());
    CHECK(rewritten->authorization_header == AuthorizationHeaderEcho::altered);

    mode = "no key";
    auto broken = f.client.check_config();
    REQUIRE_FALSE(broken.has_value());
    CHECK(broken.error().kind == ErrorKind::protocol);

    auto requests = f.fake->requests();
    REQUIRE(requests.size() == 4);
    CHECK(requests[0].method == "GET");
    CHECK(requests[0].url == "https://nc.example/nextcloud/index.php/apps/integration_openproject/check-config");
    check_common_headers(requests[0]);
    // A random Bearer value, never the admin's credentials, fresh on every call.
    REQUIRE(requests[0].authorization.starts_with("Bearer "));
    CHECK(requests[0].authorization.size() == std::string("Bearer ").size() + 32);
    CHECK(requests[0].authorization != requests[1].authorization);
}

TEST_CASE("NextcloudClient::check_admin_config and project_folder_status", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, R"({"config_status_without_project_folder":true,"project_folder_setup_status":false})", app_json);
    auto admin = f.client.check_admin_config();
    REQUIRE(admin.has_value());
    CHECK(admin->config_without_project_folder);
    CHECK_FALSE(admin->project_folder_setup);

    f.fake->push(200, R"({"result":true})", app_json);
    auto folder = f.client.project_folder_status();
    REQUIRE(folder.has_value());
    CHECK(*folder);

    auto requests = f.fake->requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].url == "https://nc.example/nextcloud/index.php/apps/integration_openproject/check-admin-config");
    CHECK(requests[0].authorization == admin_basic);
    check_common_headers(requests[0]);
    CHECK(requests[1].url == "https://nc.example/nextcloud/index.php/apps/integration_openproject/project-folder-status");
    CHECK(requests[1].authorization == admin_basic);

    SECTION("a missing key is a protocol error") {
        f.fake->push(200, R"({"config_status_without_project_folder":true})", app_json);
        CHECK(f.client.check_admin_config().error().kind == ErrorKind::protocol);
        f.fake->push(200, R"({"result":"yes"})", app_json);
        CHECK(f.client.project_folder_status().error().kind == ErrorKind::protocol);
    }
    SECTION("check-admin-config of an app older than 2.7.0: the route is an HTML 404") {
        f.fake->push(404, "<!DOCTYPE html><html><body>Page not found</body></html>", html);
        auto r = f.client.check_admin_config();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == ErrorKind::not_found);
        CHECK(r.error().hint.find("integration_openproject") != std::string::npos);
    }
}

TEST_CASE("NextcloudClient::openproject_url reads the stored URL through OCS", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, R"({"ocs":{"meta":{"status":"ok","statuscode":200,"message":"OK"},"data":"http:\/\/127.0.0.1:9999"}})", app_json);
    auto stored = f.client.openproject_url();
    REQUIRE(stored.has_value());
    CHECK(*stored == "http://127.0.0.1:9999");
    auto requests = f.fake->requests();
    CHECK(requests[0].url == "https://nc.example/nextcloud/ocs/v2.php/apps/integration_openproject/api/v1/url");
    CHECK(requests[0].authorization == admin_basic);
    check_common_headers(requests[0]);

    f.fake->push(200, R"({"ocs":{"meta":{"status":"ok","statuscode":200,"message":"OK"},"data":"https:\/\/op.example\/"}})", app_json);
    CHECK(f.client.openproject_url().value() == "https://op.example/");  // a trailing slash is kept as stored

    f.fake->push(200, R"({"ocs":{"meta":{"status":"ok","statuscode":200,"message":"OK"},"data":""}})", app_json);
    CHECK(f.client.openproject_url().value().empty());

    f.fake->push(200, R"({"ocs":{"meta":{"status":"ok","statuscode":200,"message":"OK"},"data":[]}})", app_json);
    CHECK(f.client.openproject_url().error().kind == ErrorKind::protocol);
}

TEST_CASE("NextcloudClient::setup POST sends all seven settings and authorization_method from 2.9.0", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, post_answer(/*status=*/true, /*app password=*/false), app_json);
    auto result = f.client.setup(SetupMethod::post, full_values(false), app_3_1_1);
    REQUIRE(result.has_value());
    CHECK(result->status == std::optional<bool>(true));
    CHECK(result->nextcloud_oauth_client_name == std::optional<std::string>("OpenProject client"));
    CHECK(result->openproject_redirect_uri ==
          std::optional<std::string>("http://127.0.0.1:9999/oauth_clients/" + client_id + "/callback"));
    CHECK(result->nextcloud_client_id == std::optional<std::string>(client_id));
    REQUIRE(result->nextcloud_client_secret.has_value());
    CHECK(result->nextcloud_client_secret->expose() == client_secret);
    CHECK_FALSE(result->internal_client_id.has_value());
    CHECK_FALSE(result->app_password.has_value());
    CHECK_FALSE(result->revocation_status.has_value());

    auto requests = f.fake->requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].method == "POST");
    CHECK(requests[0].url == "https://nc.example/nextcloud/index.php/apps/integration_openproject/setup");
    CHECK(requests[0].authorization == admin_basic);
    check_common_headers(requests[0]);
    CHECK(header_of(requests[0], "Content-Type") == "application/json");
    CHECK(requests[0].body ==
          R"({"values":{"openproject_instance_url":"http://127.0.0.1:9999","authorization_method":"oauth2",)"
          R"("openproject_client_id":"kU1pQ0Xr8fW2sLh5Zc7mVb3nTj9yGa4eDo6iRq0wPx1",)"
          R"("openproject_client_secret":"Xs9vQ2mK7pL0aR4tY8uW1eZ3cB6nD5fG2hJ9kM0qS7v",)"
          R"("default_enable_navigation":false,"default_enable_unified_search":false,)"
          R"("setup_project_folder":false,"setup_app_password":false}})");
}

TEST_CASE("NextcloudClient::setup POST to app 2.8.1 sends no authorization_method", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, post_answer(/*status=*/false, /*app password=*/false), app_json);
    auto result = f.client.setup(SetupMethod::post, full_values(false), Version::parse("2.8.1").value());
    REQUIRE(result.has_value());
    CHECK_FALSE(result->status.has_value());  // no `status` before 2.11.4 / 3.1.1
    CHECK(result->nextcloud_client_secret->expose() == client_secret);
    const std::string body = f.fake->requests()[0].body;
    CHECK(body.find("authorization_method") == std::string::npos);
    CHECK(body ==
          R"({"values":{"openproject_instance_url":"http://127.0.0.1:9999",)"
          R"("openproject_client_id":"kU1pQ0Xr8fW2sLh5Zc7mVb3nTj9yGa4eDo6iRq0wPx1",)"
          R"("openproject_client_secret":"Xs9vQ2mK7pL0aR4tY8uW1eZ3cB6nD5fG2hJ9kM0qS7v",)"
          R"("default_enable_navigation":false,"default_enable_unified_search":false,)"
          R"("setup_project_folder":false,"setup_app_password":false}})");

    // A pre-release of 2.9.0 does not know the key either; 2.9.0 itself does.
    f.fake->push(200, post_answer(false, false), app_json);
    REQUIRE(f.client.setup(SetupMethod::post, full_values(false), Version::parse("2.9.0-beta1").value()).has_value());
    CHECK(f.fake->requests()[1].body.find("authorization_method") == std::string::npos);
    f.fake->push(200, post_answer(false, false), app_json);
    REQUIRE(f.client.setup(SetupMethod::post, full_values(false), Version::parse("2.9.0").value()).has_value());
    CHECK(f.fake->requests()[2].body.find(R"("authorization_method":"oauth2")") != std::string::npos);
}

TEST_CASE("NextcloudClient::setup with project folders returns the app password, PHP escaping decoded", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, post_answer(true, true), app_json);
    auto result = f.client.setup(SetupMethod::post, full_values(true), app_3_1_1);
    REQUIRE(result.has_value());
    REQUIRE(result->app_password.has_value());
    CHECK(result->app_password->expose() == app_password);
    CHECK(result->app_password->size() == 72);
    CHECK(f.fake->requests()[0].body.find(R"("setup_project_folder":true,"setup_app_password":true)") != std::string::npos);
}

TEST_CASE("NextcloudClient::setup PATCH sends only the given keys", "[nextcloud]") {
    Fixture f;
    SECTION("new OpenProject client (case 18): client info with the internal id, no secret") {
        f.fake->push(200, R"({"status":true,"id":2,"nextcloud_oauth_client_name":"OpenProject client","openproject_redirect_uri":"http:\/\/127.0.0.1:9999\/oauth_clients\/)" +
                              client_id + R"(\/callback","nextcloud_client_id":")" + client_id + R"("})",
                     app_json);
        SetupValues v;
        v.openproject_client_id = "newid";
        v.openproject_client_secret = Secret("new-secret-value");
        auto result = f.client.setup(SetupMethod::patch, v, app_3_1_1);
        REQUIRE(result.has_value());
        CHECK(result->internal_client_id == std::optional<std::int64_t>(2));
        CHECK(result->nextcloud_client_id == std::optional<std::string>(client_id));
        CHECK_FALSE(result->nextcloud_client_secret.has_value());
        CHECK(result->status == std::optional<bool>(true));
        auto r = f.fake->requests()[0];
        CHECK(r.method == "PATCH");
        CHECK(r.url == "https://nc.example/nextcloud/index.php/apps/integration_openproject/setup");
        CHECK(header_of(r, "Content-Type") == "application/json");
        CHECK(r.body == R"({"values":{"openproject_client_id":"newid","openproject_client_secret":"new-secret-value"}})");
    }
    SECTION("app password rotation (case 54)") {
        f.fake->push(200, R"({"status":true,"id":4,"nextcloud_oauth_client_name":"OpenProject client","openproject_redirect_uri":"http:\/\/127.0.0.1:9999\/oauth_clients\/)" +
                              client_id + R"(\/callback","nextcloud_client_id":")" + client_id +
                              R"(","openproject_user_app_password":")" + app_password_json + R"("})",
                     app_json);
        SetupValues v;
        v.setup_app_password = true;
        auto result = f.client.setup(SetupMethod::patch, v, app_3_1_1);
        REQUIRE(result.has_value());
        CHECK(result->internal_client_id == std::optional<std::int64_t>(4));
        REQUIRE(result->app_password.has_value());
        CHECK(result->app_password->expose() == app_password);
        CHECK(f.fake->requests()[0].body == R"({"values":{"setup_app_password":true}})");
    }
    SECTION("PATCH after a reset creates a client and answers like POST, secret included") {
        f.fake->push(200, post_answer(true, false), app_json);
        SetupValues v;
        v.openproject_url = url("http://127.0.0.1:9999/");
        auto result = f.client.setup(SetupMethod::patch, v, app_3_1_1);
        REQUIRE(result.has_value());
        CHECK(result->nextcloud_client_secret->expose() == client_secret);
        CHECK(f.fake->requests()[0].body == R"({"values":{"openproject_instance_url":"http://127.0.0.1:9999"}})");
    }
    SECTION("an empty PATCH is refused before sending") {
        auto result = f.client.setup(SetupMethod::patch, SetupValues{}, app_3_1_1);
        REQUIRE_FALSE(result.has_value());
        CHECK(result.error().kind == ErrorKind::invalid_input);
        CHECK(f.fake->count() == 0);
    }
}

TEST_CASE("NextcloudClient::setup POST checks its input before sending", "[nextcloud]") {
    Fixture f;
    auto missing = full_values(false);
    missing.setup_app_password.reset();
    auto r1 = f.client.setup(SetupMethod::post, missing, app_3_1_1);
    REQUIRE_FALSE(r1.has_value());
    CHECK(r1.error().kind == ErrorKind::invalid_input);
    CHECK(r1.error().message.find("setup_app_password") != std::string::npos);

    auto pair = full_values(false);
    pair.setup_project_folder = true;
    auto r2 = f.client.setup(SetupMethod::post, pair, app_3_1_1);
    REQUIRE_FALSE(r2.has_value());
    CHECK(r2.error().kind == ErrorKind::invalid_input);

    auto empty_secret = full_values(false);
    empty_secret.openproject_client_secret = Secret("");
    CHECK(f.client.setup(SetupMethod::post, empty_secret, app_3_1_1).error().kind == ErrorKind::invalid_input);
    CHECK(f.fake->count() == 0);
}

TEST_CASE("NextcloudClient::setup: a POST answer without the new client is a protocol error", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, R"({"status":true})", app_json);
    auto r = f.client.setup(SetupMethod::post, full_values(false), app_3_1_1);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == ErrorKind::protocol);
    CHECK(r.error().message.find("nextcloud_client_secret") != std::string::npos);

    // An answer with a one-time value is never dropped, even when another key is missing.
    f.fake->push(200, R"({"status":true,"openproject_user_app_password":"only-this-one"})", app_json);
    auto kept = f.client.setup(SetupMethod::post, full_values(true), app_3_1_1);
    REQUIRE(kept.has_value());
    CHECK(kept->app_password->expose() == "only-this-one");
    CHECK_FALSE(kept->nextcloud_client_secret.has_value());
}

TEST_CASE("NextcloudClient::setup maps the app's and the framework's errors by status", "[nextcloud]") {
    struct Row {
        int status;
        std::string body;
        Headers headers;
        ErrorKind kind;
        std::string server_message;
        std::string hint_part;
    };
    auto row = GENERATE_COPY(
        Row{400, R"({"error":"invalid key"})", app_json, ErrorKind::validation, "invalid key", "OpenProject URL"},
        Row{400, R"({"error":"invalid data"})", app_json, ErrorKind::validation, "invalid data", "OpenProject URL"},
        Row{400, R"({"error":"The data is not a valid JSON."})", app_json, ErrorKind::validation,
            "The data is not a valid JSON.", "OpenProject URL"},
        Row{400, R"({"error":"Invalid authorization method"})", app_json, ErrorKind::validation,
            "Invalid authorization method", "OpenProject URL"},
        Row{409, R"({"error":"The user \"OpenProject\" already exists"})", app_json, ErrorKind::conflict,
            R"(The user "OpenProject" already exists)", "setup_project_folder false"},
        Row{409, R"({"error":"The team folder name \"OpenProject\" already exists"})", app_json, ErrorKind::conflict,
            R"(The team folder name "OpenProject" already exists)", "setup_project_folder false"},
        Row{404, R"({"error":"User \"OpenProject\" does not exists to create application password"})", app_json,
            ErrorKind::not_found, R"(User "OpenProject" does not exists to create application password)",
            "setup_project_folder true"},
        Row{500, R"({"error":"The \"groupfolders\" app is not installed"})", app_json, ErrorKind::server_error,
            R"(The "groupfolders" app is not installed)", "groupfolders"},
        Row{401, R"({"message":""})", app_json, ErrorKind::unauthenticated, "", "app password"},
        Row{401, R"({"message":"Current user is not logged in"})", app_json, ErrorKind::unauthenticated,
            "Current user is not logged in", "app password"},
        Row{403, R"({"message":"Logged in account must be an admin"})", app_json, ErrorKind::forbidden,
            "Logged in account must be an admin", "admin group"},
        Row{412, R"({"message":"CSRF check failed"})", app_json, ErrorKind::protocol, "CSRF check failed",
            "OCS-APIRequest"},
        Row{405, "", html, ErrorKind::protocol, "", "older"},
        Row{404, "<!DOCTYPE html><html><body>Not found</body></html>", html, ErrorKind::not_found, "",
            "occ app:enable integration_openproject"},
        Row{429, "", app_json, ErrorKind::server_error, "", "brute-force"},
        Row{503, "", html, ErrorKind::server_error, "", "maintenance"});
    Fixture f;
    f.fake->push(row.status, row.body, row.headers);
    auto r = f.client.setup(SetupMethod::post, full_values(true), app_3_1_1);
    REQUIRE_FALSE(r.has_value());
    INFO(row.status << " " << row.body);
    CHECK(r.error().kind == row.kind);
    CHECK(r.error().http_status == row.status);
    CHECK(r.error().server_message == row.server_message);
    CHECK(r.error().server_id.empty());
    CHECK(r.error().hint.find(row.hint_part) != std::string::npos);
    CHECK(r.error().message.find("nc.example") != std::string::npos);
    CHECK(r.error().describe().find("Xs9vQ2mK7pL0aR4tY8uW1eZ3cB6nD5fG2hJ9kM0qS7v") == std::string::npos);
    CHECK(r.error().describe().find("nc-pass") == std::string::npos);
}

TEST_CASE("NextcloudClient: a 303 to the login page is a protocol error naming the Location", "[nextcloud]") {
    Fixture f;
    f.fake->push(303, "", {{"Location", "https://nc.example/nextcloud/index.php/login?redirect_url=/index.php/apps/integration_openproject/setup"}});
    auto r = f.client.setup(SetupMethod::post, full_values(false), app_3_1_1);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == ErrorKind::protocol);
    CHECK(r.error().http_status == 303);
    CHECK(r.error().message.find("https://nc.example/nextcloud/index.php/login?redirect_url=/index.php/apps/integration_openproject/setup") !=
          std::string::npos);
    CHECK(r.error().hint.find("integration_openproject") != std::string::npos);
}

TEST_CASE("NextcloudClient: an HTML page where JSON is expected is a protocol error", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, "<!DOCTYPE html><html><head><title>Login</title></head></html>", html);
    auto r = f.client.check_admin_config();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == ErrorKind::protocol);
    CHECK(r.error().message.find("HTML") != std::string::npos);
    CHECK(r.error().message.find("Nextcloud at nc.example") != std::string::npos);
}

TEST_CASE("NextcloudClient maps transport failures with hints", "[nextcloud]") {
    Fixture f;
    f.fake->push_error(TransportError::Kind::tls, false);
    auto tls = f.client.status();
    REQUIRE_FALSE(tls.has_value());
    CHECK(tls.error().kind == ErrorKind::tls);
    CHECK(tls.error().hint.find("--ca-bundle") != std::string::npos);
    CHECK(tls.error().message.find("Nextcloud at nc.example") != std::string::npos);

    f.fake->push_error(TransportError::Kind::timeout);
    auto timeout = f.client.setup(SetupMethod::post, full_values(false), app_3_1_1);
    REQUIRE_FALSE(timeout.has_value());
    CHECK(timeout.error().kind == ErrorKind::timeout);
}

TEST_CASE("NextcloudClient: /setup and reset get the long setup timeout", "[nextcloud]") {
    auto fake = std::make_shared<FakeTransport>();
    std::vector<std::chrono::milliseconds> timeouts;
    fake->handler = [&](const HttpRequest& request) -> FakeTransport::Answer {
        timeouts.push_back(request.timeout);
        HttpResponse r;
        r.status = 200;
        r.body = request.method == "DELETE" ? R"({"status":true})" : post_answer(true, false);
        return r;
    };
    NextcloudClient client(fake, url("https://nc.example"), "admin", Secret("nc-pass"), std::chrono::seconds(150));
    REQUIRE(client.setup(SetupMethod::post, full_values(false), app_3_1_1).has_value());
    REQUIRE(client.reset().has_value());
    fake->handler = [&](const HttpRequest& request) -> FakeTransport::Answer {
        timeouts.push_back(request.timeout);
        HttpResponse r;
        r.status = 200;
        r.body = R"({"result":true})";
        return r;
    };
    REQUIRE(client.project_folder_status().has_value());
    REQUIRE(timeouts.size() == 3);
    CHECK(timeouts[0] == std::chrono::milliseconds(150'000));
    CHECK(timeouts[1] == std::chrono::milliseconds(150'000));
    CHECK(timeouts[2] == std::chrono::milliseconds(0));  // the transport's default
}

TEST_CASE("NextcloudClient::reset sends DELETE /setup without a body", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, R"({"status":true})", app_json);
    REQUIRE(f.client.reset().has_value());
    auto r = f.fake->requests()[0];
    CHECK(r.method == "DELETE");
    CHECK(r.url == "https://nc.example/nextcloud/index.php/apps/integration_openproject/setup");
    CHECK(r.body.empty());
    CHECK(header_of(r, "Content-Type") == "<absent>");
    CHECK(r.authorization == admin_basic);
    check_common_headers(r);

    f.fake->push(500, R"({"error":"something broke"})", app_json);
    auto failed = f.client.reset();
    REQUIRE_FALSE(failed.has_value());
    CHECK(failed.error().kind == ErrorKind::server_error);
    CHECK(failed.error().server_message == "something broke");
}

TEST_CASE("NextcloudClient::sign_terms_of_service posts to the app route", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, R"({"result":true})", app_json);
    auto r = f.client.sign_terms_of_service();
    REQUIRE(r.has_value());
    CHECK(*r);
    auto req = f.fake->requests()[0];
    CHECK(req.method == "POST");
    CHECK(req.url == "https://nc.example/nextcloud/index.php/apps/integration_openproject/sign-term-of-service");
    CHECK(req.authorization == admin_basic);
}

TEST_CASE("NextcloudClient::dav_check probes WebDAV with the given credentials", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, "", html);
    auto ok = f.client.dav_check("OpenProject", Secret("app-pw"));
    REQUIRE(ok.has_value());
    CHECK(*ok == DavLogin::accepted);
    auto req = f.fake->requests()[0];
    CHECK(req.method == "HEAD");
    CHECK(req.url == "https://nc.example/nextcloud/remote.php/dav");
    CHECK(req.authorization == "Basic T3BlblByb2plY3Q6YXBwLXB3");  // base64("OpenProject:app-pw")

    f.fake->push(401, "", {{"WWW-Authenticate", R"(Basic realm="Nextcloud", charset="UTF-8")"}});
    auto refused = f.client.dav_check("OpenProject", Secret("wrong"));
    REQUIRE(refused.has_value());
    CHECK(*refused == DavLogin::rejected);

    f.fake->push(503, "", html);
    auto down = f.client.dav_check("OpenProject", Secret("app-pw"));
    REQUIRE_FALSE(down.has_value());
    CHECK(down.error().kind == ErrorKind::server_error);
}

TEST_CASE("NextcloudClient: wrong admin credentials on admin routes are unauthenticated", "[nextcloud]") {
    Fixture f;
    f.fake->push(401, R"({"message":""})", app_json);
    auto r = f.client.project_folder_status();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == ErrorKind::unauthenticated);
    CHECK(r.error().message.find("user admin") != std::string::npos);
    f.fake->push(403, R"({"message":"Logged in user must be an admin"})", app_json);  // older wording
    auto forbidden = f.client.openproject_url();
    REQUIRE_FALSE(forbidden.has_value());
    CHECK(forbidden.error().kind == ErrorKind::forbidden);
    CHECK(forbidden.error().server_message == "Logged in user must be an admin");
}

TEST_CASE("NextcloudClient::probe_openproject asks the Nextcloud server to reach OpenProject", "[nextcloud]") {
    Fixture f;
    f.fake->push(200, R"({"result":true})", app_json);
    auto ok = f.client.probe_openproject(url("https://op.example/pm/"));
    REQUIRE(ok.has_value());
    CHECK(ok->valid);
    CHECK(ok->verdict.empty());
    CHECK(ok->hint().empty());
    auto r = f.fake->requests()[0];
    CHECK(r.method == "POST");
    CHECK(r.url == "https://nc.example/nextcloud/index.php/apps/integration_openproject/is-valid-op-instance");
    CHECK(r.body == R"({"url":"https://op.example/pm"})");
    CHECK(header_of(r, "Content-Type") == "application/json");
    CHECK(header_of(r, "OCS-APIRequest") == "true");  // CSRF-protected route: 412 without it
    CHECK(r.authorization == admin_basic);

    f.fake->push(200, R"({"result":"redirected","details":"https:\/\/op.example\/"})", app_json);
    auto redirected = f.client.probe_openproject(url("http://op.example"));
    REQUIRE(redirected.has_value());
    CHECK_FALSE(redirected->valid);
    CHECK(redirected->verdict == "redirected");
    CHECK(redirected->details == "https://op.example/");
    CHECK(redirected->hint().find("https://op.example/") != std::string::npos);

    f.fake->push(200, R"({"result":"network_error","details":"cURL error 7: Failed to connect to 127.0.0.1 port 9999"})", app_json);
    auto down = f.client.probe_openproject(url("http://127.0.0.1:9999"));
    REQUIRE(down.has_value());
    CHECK(down->verdict == "network_error");
    CHECK(down->details == "cURL error 7: Failed to connect to 127.0.0.1 port 9999");
    CHECK(down->hint().find("DNS, firewall") != std::string::npos);

    f.fake->push(200, R"({"result":"local_remote_servers_not_allowed"})", app_json);
    auto local = f.client.probe_openproject(url("http://127.0.0.1:9999"));
    REQUIRE(local.has_value());
    CHECK(local->verdict == "local_remote_servers_not_allowed");
    CHECK(local->hint().find("allow_local_remote_servers") != std::string::npos);

    f.fake->push(200, R"({"details":"x"})", app_json);
    CHECK(f.client.probe_openproject(url("http://op.example")).error().kind == ErrorKind::protocol);

    f.fake->push(412, R"({"message":"CSRF check failed"})", app_json);
    auto csrf = f.client.probe_openproject(url("http://op.example"));
    REQUIRE_FALSE(csrf.has_value());
    CHECK(csrf.error().kind == ErrorKind::protocol);
    CHECK(csrf.error().http_status == 412);
}

TEST_CASE("NextcloudClient serves several threads at once", "[nextcloud][threads]") {
    auto fake = std::make_shared<FakeTransport>();
    // Echo check-config's header and answer the admin check, like Nextcloud would, for any thread.
    fake->handler = [](const HttpRequest& request) -> FakeTransport::Answer {
        HttpResponse r;
        r.status = 200;
        if (request.url.ends_with("/check-config"))
            r.body = R"({"user_id":"","authorization_header":")" + request.authorization()->expose() + R"("})";
        else
            r.body = R"({"config_status_without_project_folder":true,"project_folder_setup_status":true})";
        return r;
    };
    const NextcloudClient client(fake, url("https://nc.example"), "admin", Secret("nc-pass"));
    std::atomic<int> unchanged{0}, configured{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 25; ++i) {
                auto echo = client.check_config();
                if (echo && echo->authorization_header == AuthorizationHeaderEcho::unchanged) ++unchanged;
                auto admin = client.check_admin_config();
                if (admin && admin->config_without_project_folder) ++configured;
            }
        });
    for (auto& t : threads) t.join();
    CHECK(unchanged.load() == 200);
    CHECK(configured.load() == 200);
    CHECK(fake->count() == 400);
}

TEST_CASE("NextcloudClient turns hostile answers into protocol errors, never exceptions", "[nextcloud]") {
    const std::vector<std::string> bodies = {"null", "[]", "\"ok\"", "42", R"({"ocs":[]})",
                                             R"({"ocs":{"data":{"version":{"major":"x"}}}})",
                                             R"({"result":null,"authorization_header":5})", std::string(2000, '{')};
    for (const std::string& body : bodies) {
        INFO(body.substr(0, 60));
        Fixture f;
        for (int i = 0; i < 8; ++i) f.fake->push(200, body, app_json);
        CHECK(f.client.status().error().kind == ErrorKind::protocol);
        CHECK(f.client.capabilities().error().kind == ErrorKind::protocol);
        CHECK(f.client.check_config().error().kind == ErrorKind::protocol);
        CHECK(f.client.check_admin_config().error().kind == ErrorKind::protocol);
        CHECK(f.client.project_folder_status().error().kind == ErrorKind::protocol);
        CHECK(f.client.openproject_url().error().kind == ErrorKind::protocol);
        CHECK(f.client.setup(SetupMethod::post, full_values(false), app_3_1_1).error().kind == ErrorKind::protocol);
        CHECK(f.client.probe_openproject(url("https://op.example")).error().kind == ErrorKind::protocol);
    }
}

TEST_CASE("NextcloudClient refuses settings that are not UTF-8 before sending", "[nextcloud]") {
    Fixture f;
    auto values = full_values(false);
    values.openproject_client_secret = Secret("bad\xFF");
    auto r = f.client.setup(SetupMethod::post, values, app_3_1_1);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == ErrorKind::invalid_input);
    CHECK(f.fake->count() == 0);
}
