// OpenProjectClient against a scripted transport: the exact requests (contract/openproject.md
// §1, §3.1, §6-§8), the parsing of the read models (§2, §3.2-§3.4) and the error model (§11, §17).
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fake_transport.hpp"
#include "opnc/openproject_client.hpp"

using namespace opnc;
using opnc::testing::FakeTransport;

namespace {

const Headers hal = {{"Content-Type", "application/hal+json; charset=utf-8"}};
constexpr const char* basic_header = "Basic YXBpa2V5OjBwLXQwa2Vu";  // base64("apikey:0p-t0ken")
constexpr const char* one_time_secret = "Xs9vQ2mK7pL0aR4tY8uW1eZ3cB6nD5fG2hJ9kM0qS7v";

Url url(const char* text) {
    auto parsed = Url::parse(text);
    REQUIRE(parsed.has_value());
    return *parsed;
}

struct Fixture {
    std::shared_ptr<FakeTransport> fake = std::make_shared<FakeTransport>();
    OpenProjectClient client{fake, url("https://op.example/pm"), Secret("0p-t0ken")};
};

std::string header_of(const opnc::testing::RecordedRequest& r, const char* name) {
    return find_header(r.headers, name).value_or("<absent>");
}

void check_common_headers(const opnc::testing::RecordedRequest& r) {
    CHECK(header_of(r, "Accept") == "application/hal+json");
    CHECK(r.authorization == basic_header);
    if (r.method == "GET")
        CHECK(header_of(r, "Content-Type") == "<absent>");
    else
        CHECK(header_of(r, "Content-Type") == "application/json");
}

// The 201 of POST /api/v3/storages (contract §3.2-§3.4, §4.4), with the one-time clientSecret.
std::string created_storage_body(bool with_secret = true) {
    return std::string(R"({"_type":"Storage","id":7,"name":"Nextcloud","configured":false,"hasApplicationPassword":false,)"
                       R"("createdAt":"2025-06-01T10:00:00.000Z","updatedAt":"2025-06-01T10:00:00.000Z",)"
                       R"("_links":{"self":{"href":"/pm/api/v3/storages/7","title":"Nextcloud"},)"
                       R"("type":{"href":"urn:openproject-org:api:v3:storages:Nextcloud","title":"Nextcloud"},)"
                       R"("origin":{"href":"https://nc.example"},)"
                       R"("authenticationMethod":{"href":"urn:openproject-org:api:v3:storages:authenticationMethod:TwoWayOAuth2"},)"
                       R"("prepareUpload":[],"open":{"href":"/pm/api/v3/storages/7/open"},)"
                       R"("authorizationState":{"href":"urn:openproject-org:api:v3:storages:authorization:FailedAuthorization","title":"Failed"},)"
                       R"j("oauthApplication":{"href":"/pm/api/v3/oauth_applications/3","title":"Nextcloud (Nextcloud)"},)j"
                       R"("oauthClientCredentials":{"href":null}},)"
                       R"j("_embedded":{"oauthApplication":{"_type":"OAuthApplication","id":3,"name":"Nextcloud (Nextcloud)",)j"
                       R"("clientId":"kU1pQ0Xr8fW2sLh5Zc7mVb3nTj9yGa4eDo6iRq0wPx1",)") +
           (with_secret ? std::string(R"("clientSecret":")") + one_time_secret + R"(",)" : std::string()) +
           R"("confidential":true,"scopes":["api_v3"],"_links":{"self":{"href":"/pm/api/v3/oauth_applications/3"},)"
           R"("redirectUri":[{"href":"https://nc.example/index.php/apps/integration_openproject/oauth-redirect"}]}}}})";
}

// A configured storage as an administrator sees it on GET (no clientSecret, §3.3).
const char* configured_storage = R"({"_type":"Storage","id":7,"name":"Nextcloud","configured":true,"hasApplicationPassword":true,
 "_links":{"type":{"href":"urn:openproject-org:api:v3:storages:Nextcloud"},"origin":{"href":"https://nc.example"},
           "authenticationMethod":{"href":"urn:openproject-org:api:v3:storages:authenticationMethod:TwoWayOAuth2"},
           "oauthClientCredentials":{"href":"/api/v3/oauth_client_credentials/4"}},
 "_embedded":{"oauthApplication":{"_type":"OAuthApplication","id":3,"clientId":"kU1pQ0Xr8fW2sLh5Zc7mVb3nTj9yGa4eDo6iRq0wPx1","confidential":true},
              "oauthClientCredentials":{"_type":"OAuthClientCredentials","id":4,"clientId":"nCq1w2e3r4t5y6u7i8o9p0aAsSdDfFgGhHjJkKlLzZxXcCvVbBnNmM1234567890ab","confidential":true}}})";

std::string hal_error(const char* identifier, const char* message, const char* attribute = nullptr) {
    std::string body = std::string(R"({"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:)") +
                       identifier + R"(","message":")" + message + "\"";
    if (attribute) body += std::string(R"(,"_embedded":{"details":{"attribute":")") + attribute + "\"}}";
    return body + "}";
}

const char* taken_host_and_name =
    R"({"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:MultipleErrors",
 "message":"Multiple field constraints have been violated.",
 "_embedded":{"errors":[{"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:PropertyConstraintViolation","message":"Host has already been taken.","_embedded":{"details":{"attribute":"host"}}},
                        {"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:PropertyConstraintViolation","message":"Name has already been taken.","_embedded":{"details":{"attribute":"name"}}}]}})";

}  // namespace

TEST_CASE("OpenProjectClient::root reads the instance name and the admin-only core version", "[openproject]") {
    Fixture f;
    f.fake->push(200, R"({"_type":"Root","instanceName":"OpenProject","coreVersion":"16.0.0",
        "_links":{"self":{"href":"/pm/api/v3"},"user":{"href":"/pm/api/v3/users/1","title":"Admin"}}})", hal);
    auto root = f.client.root();
    REQUIRE(root.has_value());
    CHECK(root->instance_name == "OpenProject");
    REQUIRE(root->core_version.has_value());
    CHECK(*root->core_version == Version::of(16, 0, 0));

    auto requests = f.fake->requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].method == "GET");
    CHECK(requests[0].url == "https://op.example/pm/api/v3");
    CHECK(requests[0].body.empty());
    check_common_headers(requests[0]);

    SECTION("non-admins get no coreVersion") {
        f.fake->push(200, R"({"_type":"Root","instanceName":"Acme PM","_links":{}})", hal);
        auto r = f.client.root();
        REQUIRE(r.has_value());
        CHECK(r->instance_name == "Acme PM");
        CHECK_FALSE(r->core_version.has_value());
    }
    SECTION("a body that is not a Root is a protocol error") {
        f.fake->push(200, R"({"_type":"Collection"})", hal);
        auto r = f.client.root();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == ErrorKind::protocol);
        CHECK(r.error().http_status == 200);
    }
    SECTION("a Root without instanceName is a protocol error") {
        f.fake->push(200, R"({"_type":"Root","instanceName":""})", hal);
        auto r = f.client.root();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == ErrorKind::protocol);
        CHECK(r.error().message.find("instanceName") != std::string::npos);
    }
    SECTION("an unreadable coreVersion is a protocol error") {
        f.fake->push(200, R"({"_type":"Root","instanceName":"OpenProject","coreVersion":"sixteen"})", hal);
        auto r = f.client.root();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == ErrorKind::protocol);
        CHECK(r.error().message.find("coreVersion") != std::string::npos);
    }
}

TEST_CASE("OpenProjectClient sends the API token as Bearer when asked", "[openproject]") {
    auto fake = std::make_shared<FakeTransport>();
    OpenProjectClient client(fake, url("https://op.example"), Secret("opapi-abc"), OpenProjectAuth::bearer);
    fake->push(401, hal_error("Unauthenticated", "You did not provide the correct credentials."), hal);
    auto root = client.root();
    REQUIRE_FALSE(root.has_value());
    CHECK(root.error().kind == ErrorKind::unauthenticated);
    CHECK(root.error().hint.find("Basic") != std::string::npos);
    REQUIRE(fake->count() == 1);
    CHECK(fake->requests()[0].authorization == "Bearer opapi-abc");
    CHECK(fake->requests()[0].url == "https://op.example/api/v3");
}

TEST_CASE("OpenProjectClient::me reads admin and status, absent for non-admins", "[openproject]") {
    Fixture f;
    f.fake->push(200, R"({"_type":"User","id":1,"name":"OpenProject Admin","login":"admin","firstName":"OpenProject",
        "lastName":"Admin","admin":true,"status":"active","language":"en","_links":{"self":{"href":"/api/v3/users/1"}}})", hal);
    auto me = f.client.me();
    REQUIRE(me.has_value());
    CHECK(me->id == 1);
    CHECK(me->name == "OpenProject Admin");
    CHECK(me->login == std::optional<std::string>("admin"));
    CHECK(me->admin == std::optional<bool>(true));
    CHECK(me->status == std::optional<std::string>("active"));
    CHECK(me->is_active_admin());
    CHECK(f.fake->requests()[0].url == "https://op.example/pm/api/v3/users/me");
    check_common_headers(f.fake->requests()[0]);

    f.fake->push(200, R"({"_type":"User","id":5,"name":"Jane","login":"jane","status":"active"})", hal);
    auto jane = f.client.me();
    REQUIRE(jane.has_value());
    CHECK_FALSE(jane->admin.has_value());
    CHECK_FALSE(jane->is_active_admin());

    f.fake->push(200, R"({"_type":"User","id":2,"name":"Old Admin","admin":true,"status":"locked"})", hal);
    auto locked = f.client.me();
    REQUIRE(locked.has_value());
    CHECK_FALSE(locked->is_active_admin());

    f.fake->push(200, R"({"_type":"User","name":"No id"})", hal);
    auto broken = f.client.me();
    REQUIRE_FALSE(broken.has_value());
    CHECK(broken.error().kind == ErrorKind::protocol);
}

TEST_CASE("OpenProjectClient::list_storages reads every element of the collection", "[openproject]") {
    Fixture f;
    f.fake->push(200, std::string(R"({"_type":"Collection","total":2,"count":2,"_embedded":{"elements":[)") + configured_storage +
                          R"(,{"_type":"Storage","id":9,"name":"Drive","configured":false,
                   "_links":{"type":{"href":"urn:openproject-org:api:v3:storages:OneDrive"},"origin":{"href":null}}}]},
                   "_links":{"self":{"href":"/api/v3/storages"}}})",
                  hal);
    auto storages = f.client.list_storages();
    REQUIRE(storages.has_value());
    REQUIRE(storages->size() == 2);
    const Storage& nc = (*storages)[0];
    CHECK(nc.id == 7);
    CHECK(nc.name == "Nextcloud");
    CHECK(nc.host == std::optional<std::string>("https://nc.example"));
    CHECK(nc.provider_type == "urn:openproject-org:api:v3:storages:Nextcloud");
    CHECK(nc.is_nextcloud());
    CHECK(nc.authentication_method == std::optional<std::string>(std::string(op_urn::two_way_oauth2)));
    CHECK(nc.uses_two_way_oauth2());
    CHECK(nc.configured);
    CHECK(nc.has_application_password == std::optional<bool>(true));
    CHECK(nc.oauth_application_id == std::optional<std::int64_t>(3));
    CHECK(nc.oauth_application_client_id == std::optional<std::string>("kU1pQ0Xr8fW2sLh5Zc7mVb3nTj9yGa4eDo6iRq0wPx1"));
    CHECK(nc.oauth_client_credentials_client_id ==
          std::optional<std::string>("nCq1w2e3r4t5y6u7i8o9p0aAsSdDfFgGhHjJkKlLzZxXcCvVbBnNmM1234567890ab"));

    const Storage& drive = (*storages)[1];
    CHECK(drive.id == 9);
    CHECK_FALSE(drive.host.has_value());
    CHECK_FALSE(drive.is_nextcloud());
    CHECK_FALSE(drive.configured);
    CHECK_FALSE(drive.has_application_password.has_value());
    CHECK_FALSE(drive.oauth_application_client_id.has_value());
    CHECK_FALSE(drive.oauth_client_credentials_client_id.has_value());
    CHECK_FALSE(drive.authentication_method.has_value());
    CHECK(drive.uses_two_way_oauth2());  // releases before 16.0 know no other method

    CHECK(f.fake->requests()[0].url == "https://op.example/pm/api/v3/storages");

    SECTION("a body without _embedded.elements is a protocol error") {
        f.fake->push(200, R"({"_type":"Collection","total":0})", hal);
        auto r = f.client.list_storages();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == ErrorKind::protocol);
    }
    SECTION("an element without id is a protocol error") {
        f.fake->push(200, R"({"_embedded":{"elements":[{"_type":"Storage","name":"x"}]}})", hal);
        auto r = f.client.list_storages();
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == ErrorKind::protocol);
    }
}

TEST_CASE("OpenProjectClient::get_storage reads one storage and maps 404 to not_found", "[openproject]") {
    Fixture f;
    f.fake->push(200, configured_storage, hal);
    auto storage = f.client.get_storage(7);
    REQUIRE(storage.has_value());
    CHECK(storage->id == 7);
    CHECK(f.fake->requests()[0].url == "https://op.example/pm/api/v3/storages/7");

    f.fake->push(404, hal_error("NotFound", "The requested resource could not be found."), hal);
    auto missing = f.client.get_storage(8);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().kind == ErrorKind::not_found);
    CHECK(missing.error().http_status == 404);
    CHECK(missing.error().server_id == "urn:openproject-org:api:v3:errors:NotFound");
    CHECK(missing.error().server_message == "The requested resource could not be found.");
    CHECK(missing.error().message.find("storage 8") != std::string::npos);
    CHECK_FALSE(missing.error().hint.empty());
}

TEST_CASE("OpenProjectClient::create_storage sends the two-way body and returns the one-time secret", "[openproject]") {
    Fixture f;
    f.fake->push(201, created_storage_body(), hal);
    auto created = f.client.create_storage("Nextcloud", url("https://NC.example/"));
    REQUIRE(created.has_value());
    CHECK(created->storage.id == 7);
    CHECK(created->storage.name == "Nextcloud");
    CHECK(created->storage.host == std::optional<std::string>("https://nc.example"));
    CHECK_FALSE(created->storage.configured);
    CHECK(created->storage.has_application_password == std::optional<bool>(false));
    CHECK(created->openproject_client_id == "kU1pQ0Xr8fW2sLh5Zc7mVb3nTj9yGa4eDo6iRq0wPx1");
    CHECK(created->openproject_client_secret.expose() == one_time_secret);
    CHECK(created->storage.oauth_application_client_id == std::optional<std::string>(created->openproject_client_id));

    auto requests = f.fake->requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].method == "POST");
    CHECK(requests[0].url == "https://op.example/pm/api/v3/storages");
    check_common_headers(requests[0]);
    CHECK(requests[0].body ==
          R"({"name":"Nextcloud","applicationPassword":"","_links":{"origin":{"href":"https://nc.example"},)"
          R"("type":{"href":"urn:openproject-org:api:v3:storages:Nextcloud"},)"
          R"("authenticationMethod":{"href":"urn:openproject-org:api:v3:storages:authenticationMethod:TwoWayOAuth2"}}})");
}

TEST_CASE("OpenProjectClient::create_storage keeps a sub-path of the Nextcloud host", "[openproject]") {
    Fixture f;
    f.fake->push(201, created_storage_body(), hal);
    REQUIRE(f.client.create_storage("Files", url("https://example.org/nextcloud/")).has_value());
    CHECK(f.fake->requests()[0].body.find(R"("origin":{"href":"https://example.org/nextcloud"})") != std::string::npos);
}

TEST_CASE("OpenProjectClient::create_storage: a 201 without clientSecret is a protocol error", "[openproject]") {
    Fixture f;
    f.fake->push(201, created_storage_body(/*with_secret=*/false), hal);
    auto created = f.client.create_storage("Nextcloud", url("https://nc.example"));
    REQUIRE_FALSE(created.has_value());
    CHECK(created.error().kind == ErrorKind::protocol);
    CHECK(created.error().http_status == 201);
    CHECK(created.error().message.find("storage 7") != std::string::npos);
    CHECK(created.error().hint.find("delete storage 7") != std::string::npos);
}

TEST_CASE("OpenProjectClient::create_storage checks the name before sending", "[openproject]") {
    Fixture f;
    auto empty = f.client.create_storage("", url("https://nc.example"));
    REQUIRE_FALSE(empty.has_value());
    CHECK(empty.error().kind == ErrorKind::invalid_input);
    auto long_name = f.client.create_storage(std::string(256, 'n'), url("https://nc.example"));
    REQUIRE_FALSE(long_name.has_value());
    CHECK(long_name.error().kind == ErrorKind::invalid_input);
    CHECK(f.fake->count() == 0);

    // 255 characters of two bytes each are still 255 characters.
    std::string umlauts;
    for (int i = 0; i < 255; ++i) umlauts += "\xC3\xA4";
    f.fake->push(201, created_storage_body(), hal);
    CHECK(f.client.create_storage(umlauts, url("https://nc.example")).has_value());
}

TEST_CASE("OpenProjectClient::create_storage tells a uniqueness violation by re-reading the storages", "[openproject]") {
    Fixture f;
    f.fake->push(422, taken_host_and_name, hal);
    f.fake->push(200, std::string(R"({"_type":"Collection","_embedded":{"elements":[)") + configured_storage + "]}}", hal);
    auto created = f.client.create_storage("Nextcloud", url("https://nc.example"));
    REQUIRE_FALSE(created.has_value());
    const Error& e = created.error();
    CHECK(e.kind == ErrorKind::conflict);
    CHECK(e.http_status == 422);
    CHECK(e.server_id == "host:taken,name:taken");
    CHECK(e.server_message == "Host has already been taken. Name has already been taken.");
    CHECK(e.message.find("storage 7") != std::string::npos);
    CHECK(e.hint.find("delete storage 7") != std::string::npos);
    auto violations = openproject_violations(e);
    REQUIRE(violations.size() == 2);
    CHECK(violations[0].attribute == "host");
    CHECK(violations[0].key == "taken");
    CHECK(violations[1].attribute == "name");
    CHECK(violations[1].key == "taken");

    auto requests = f.fake->requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[1].method == "GET");
    CHECK(requests[1].url == "https://op.example/pm/api/v3/storages");
}

TEST_CASE("OpenProjectClient::create_storage: host taken by a storage with a trailing slash", "[openproject]") {
    Fixture f;
    f.fake->push(422, hal_error("PropertyConstraintViolation", "Host has already been taken.", "host"), hal);
    f.fake->push(200, R"({"_embedded":{"elements":[{"_type":"Storage","id":3,"name":"Other",
        "_links":{"type":{"href":"urn:openproject-org:api:v3:storages:Nextcloud"},"origin":{"href":"https://nc.example/"}}}]}})",
                 hal);
    auto created = f.client.create_storage("Nextcloud", url("https://nc.example"));
    REQUIRE_FALSE(created.has_value());
    CHECK(created.error().kind == ErrorKind::conflict);
    CHECK(created.error().server_id == "host:taken");
    CHECK(created.error().message.find("host") != std::string::npos);
}

TEST_CASE("OpenProjectClient::create_storage: host probe failures stay validation errors", "[openproject]") {
    Fixture f;
    f.fake->push(422, hal_error("PropertyConstraintViolation", "Host can not be connected to.", "host"), hal);
    f.fake->push(200, R"({"_type":"Collection","_embedded":{"elements":[]}})", hal);
    auto created = f.client.create_storage("Nextcloud", url("https://nc.example"));
    REQUIRE_FALSE(created.has_value());
    const Error& e = created.error();
    CHECK(e.kind == ErrorKind::validation);
    CHECK(e.http_status == 422);
    CHECK(e.server_id == "host");
    CHECK(e.server_message == "Host can not be connected to.");
    CHECK(e.hint.find("Authorization header") != std::string::npos);
    auto violations = openproject_violations(e);
    REQUIRE(violations.size() == 1);
    CHECK(violations[0].attribute == "host");
    CHECK(violations[0].key.empty());
}

TEST_CASE("OpenProjectClient reads error keys when the server renders them", "[openproject]") {
    Fixture f;
    f.fake->push(422, R"({"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:PropertyConstraintViolation",
        "message":"Name has already been taken.","_embedded":{"details":{"attribute":"name","key":"taken"}}})", hal);
    auto created = f.client.create_storage("Nextcloud", url("https://nc.example"));
    REQUIRE_FALSE(created.has_value());
    CHECK(created.error().kind == ErrorKind::conflict);
    CHECK(created.error().server_id == "name:taken");
    CHECK(f.fake->count() == 1);  // the key says it all: no re-read
}

TEST_CASE("OpenProjectClient: password and name violations are validation errors with hints", "[openproject]") {
    Fixture f;
    f.fake->push(422, R"({"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:PropertyConstraintViolation",
        "message":"Password is not valid.","_embedded":{"details":{"attribute":"password"}}})", hal);
    auto updated = f.client.update_storage_application_password(7, Secret("wrong"));
    REQUIRE_FALSE(updated.has_value());
    CHECK(updated.error().kind == ErrorKind::validation);
    CHECK(updated.error().server_id == "password");
    CHECK(updated.error().hint.find("application password") != std::string::npos);
    CHECK(f.fake->count() == 1);  // no name or host involved: no re-read
}

TEST_CASE("OpenProjectClient maps the Enterprise gate to enterprise_required", "[openproject]") {
    Fixture f;
    SECTION("422 on authenticationMethod (no key rendered)") {
        f.fake->push(422, hal_error("PropertyConstraintViolation", "Authentication method requires Enterprise.",
                                    "authenticationMethod"),
                     hal);
    }
    SECTION("422 MultipleErrors with enterprise_plan_required on authentication_method") {
        f.fake->push(422, R"({"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:MultipleErrors","message":"m",
            "_embedded":{"errors":[{"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:PropertyConstraintViolation","message":"a",
            "_embedded":{"details":{"attribute":"authentication_method","key":"enterprise_plan_required"}}},
            {"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:PropertyConstraintViolation","message":"b",
            "_embedded":{"details":{"attribute":"name"}}}]}})",
                     hal);
    }
    SECTION("403 ...EnterpriseTokenMissing") {
        f.fake->push(403, hal_error("EnterpriseTokenMissing", "Enterprise token missing."), hal);
    }
    SECTION("500 MissingEnterpriseToken (the identifier in opf/openproject's code)") {
        f.fake->push(500, R"({"_type":"Error","errorIdentifier":"MissingEnterpriseToken","message":"x"})", hal);
    }
    auto created = f.client.create_storage("Nextcloud", url("https://nc.example"));
    REQUIRE_FALSE(created.has_value());
    CHECK(created.error().kind == ErrorKind::enterprise_required);
    CHECK(created.error().hint.find("Enterprise token (Corporate plan)") != std::string::npos);
    CHECK(f.fake->count() == 1);  // no re-read: nothing was created, nothing to explain
}

TEST_CASE("OpenProjectClient maps HAL error statuses to kinds", "[openproject]") {
    struct Row {
        int status;
        std::string body;
        ErrorKind kind;
        std::string server_id;
    };
    auto row = GENERATE(
        Row{401, hal_error("Unauthenticated", "You did not provide the correct credentials."), ErrorKind::unauthenticated,
            "urn:openproject-org:api:v3:errors:Unauthenticated"},
        Row{403, hal_error("MissingPermission", "You are not authorized to access this resource."), ErrorKind::forbidden,
            "urn:openproject-org:api:v3:errors:MissingPermission"},
        Row{404, hal_error("NotFound", "The requested resource could not be found."), ErrorKind::not_found,
            "urn:openproject-org:api:v3:errors:NotFound"},
        Row{406, "Missing content-type header", ErrorKind::protocol, ""},
        Row{406, R"({"error":"Missing content-type header"})", ErrorKind::protocol, ""},
        Row{415, hal_error("TypeNotSupported", "Expected CONTENT-TYPE to be (application/json) but got (text/plain)."),
            ErrorKind::protocol, "urn:openproject-org:api:v3:errors:TypeNotSupported"},
        Row{400, hal_error("InvalidRequestBody", "The request body was not a single JSON object."), ErrorKind::protocol,
            "urn:openproject-org:api:v3:errors:InvalidRequestBody"},
        Row{409, hal_error("UpdateConflict", "Conflict."), ErrorKind::conflict,
            "urn:openproject-org:api:v3:errors:UpdateConflict"},
        Row{429, "", ErrorKind::server_error, ""},
        Row{500, hal_error("InternalServerError", "An internal error has occurred."), ErrorKind::server_error,
            "urn:openproject-org:api:v3:errors:InternalServerError"},
        Row{502, "<html><body>Bad Gateway</body></html>", ErrorKind::server_error, ""},
        Row{418, "", ErrorKind::protocol, ""});
    Fixture f;
    f.fake->push(row.status, row.body, hal);
    auto r = f.client.delete_storage(7);
    REQUIRE_FALSE(r.has_value());
    INFO(row.status << " " << row.body);
    CHECK(r.error().kind == row.kind);
    CHECK(r.error().http_status == row.status);
    CHECK(r.error().server_id == row.server_id);
    CHECK_FALSE(r.error().message.empty());
    CHECK_FALSE(r.error().hint.empty());
    CHECK(r.error().message.find("op.example") != std::string::npos);
}

TEST_CASE("OpenProjectClient: a redirect on an API call is a protocol error naming the Location", "[openproject]") {
    Fixture f;
    f.fake->push(302, "", {{"Location", "https://op.example/login?back_url=%2Fpm%2Fapi%2Fv3"}});
    auto root = f.client.root();
    REQUIRE_FALSE(root.has_value());
    CHECK(root.error().kind == ErrorKind::protocol);
    CHECK(root.error().http_status == 302);
    CHECK(root.error().message.find("https://op.example/login?back_url=%2Fpm%2Fapi%2Fv3") != std::string::npos);
    CHECK(root.error().hint.find("base URL") != std::string::npos);
}

TEST_CASE("OpenProjectClient: an HTML or broken body where JSON is expected is a protocol error", "[openproject]") {
    Fixture f;
    f.fake->push(200, "<!DOCTYPE html><html><body>Sign in</body></html>", {{"Content-Type", "text/html; charset=utf-8"}});
    auto html = f.client.list_storages();
    REQUIRE_FALSE(html.has_value());
    CHECK(html.error().kind == ErrorKind::protocol);
    CHECK(html.error().message.find("HTML") != std::string::npos);

    f.fake->push(200, R"({"_type":"Collection",)", hal);
    auto broken = f.client.list_storages();
    REQUIRE_FALSE(broken.has_value());
    CHECK(broken.error().kind == ErrorKind::protocol);
    CHECK(broken.error().message.find("not valid JSON") != std::string::npos);

    f.fake->push(200, "", hal);
    auto empty = f.client.me();
    REQUIRE_FALSE(empty.has_value());
    CHECK(empty.error().kind == ErrorKind::protocol);
    CHECK(empty.error().message.find("empty body") != std::string::npos);
}

TEST_CASE("OpenProjectClient maps transport failures to kinds with hints", "[openproject]") {
    struct Row {
        TransportError::Kind transport;
        ErrorKind kind;
        std::string hint_part;
    };
    auto row = GENERATE(Row{TransportError::Kind::dns, ErrorKind::connection_failed, "host name"},
                        Row{TransportError::Kind::connect, ErrorKind::connection_failed, "running"},
                        Row{TransportError::Kind::tls, ErrorKind::tls, "--ca-bundle"},
                        Row{TransportError::Kind::timeout, ErrorKind::timeout, "timeout"},
                        Row{TransportError::Kind::too_large, ErrorKind::too_large, "points at OpenProject"},
                        Row{TransportError::Kind::aborted, ErrorKind::aborted, "Run again"},
                        Row{TransportError::Kind::other, ErrorKind::connection_failed, "network"});
    Fixture f;
    f.fake->push_error(row.transport);
    auto r = f.client.get_storage(1);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().kind == row.kind);
    CHECK(r.error().http_status == 0);
    CHECK(r.error().message.find("OpenProject at op.example") != std::string::npos);
    CHECK(r.error().hint.find(row.hint_part) != std::string::npos);
}

TEST_CASE("OpenProjectClient::update_storage_application_password sets or clears the password", "[openproject]") {
    Fixture f;
    f.fake->push(200, configured_storage, hal);
    auto set = f.client.update_storage_application_password(7, Secret("p\"w/<x>\\y"));
    REQUIRE(set.has_value());
    CHECK(set->has_application_password == std::optional<bool>(true));

    f.fake->push(200, created_storage_body(false), hal);
    auto cleared = f.client.update_storage_application_password(7, std::nullopt);
    REQUIRE(cleared.has_value());
    CHECK(cleared->has_application_password == std::optional<bool>(false));

    auto requests = f.fake->requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].method == "PATCH");
    CHECK(requests[0].url == "https://op.example/pm/api/v3/storages/7");
    check_common_headers(requests[0]);
    CHECK(requests[0].body == R"({"applicationPassword":"p\"w/<x>\\y"})");
    CHECK(requests[1].body == R"({"applicationPassword":""})");
}

TEST_CASE("OpenProjectClient::update_storage sends only the changed fields", "[openproject]") {
    Fixture f;
    f.fake->push(200, configured_storage, hal);
    StorageChanges changes;
    changes.name = "Files";
    changes.host = url("https://files.example/");
    REQUIRE(f.client.update_storage(7, changes).has_value());
    CHECK(f.fake->requests()[0].body == R"({"name":"Files","_links":{"origin":{"href":"https://files.example"}}})");

    auto nothing = f.client.update_storage(7, StorageChanges{});
    REQUIRE_FALSE(nothing.has_value());
    CHECK(nothing.error().kind == ErrorKind::invalid_input);
    CHECK(f.fake->count() == 1);

    SECTION("a name taken by another storage is a conflict; the storage itself does not count") {
        f.fake->push(422, hal_error("PropertyConstraintViolation", "Name has already been taken.", "name"), hal);
        f.fake->push(200, std::string(R"({"_embedded":{"elements":[)") + configured_storage +
                              R"(,{"_type":"Storage","id":8,"name":"Files","_links":{}}]}})",
                     hal);
        auto r = f.client.update_storage(7, changes);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == ErrorKind::conflict);
        CHECK(r.error().server_id == "name:taken");
        CHECK(r.error().message.find("storage 8") != std::string::npos);
    }
    SECTION("the only match being the storage itself keeps it a validation error") {
        f.fake->push(422, hal_error("PropertyConstraintViolation", "Host is not a Nextcloud server", "host"), hal);
        f.fake->push(200, std::string(R"({"_embedded":{"elements":[)") + configured_storage + "]}}", hal);
        StorageChanges host_only;
        host_only.host = url("https://nc.example");
        auto r = f.client.update_storage(7, host_only);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == ErrorKind::validation);
        CHECK(r.error().server_id == "host");
    }
}

TEST_CASE("OpenProjectClient::delete_storage sends DELETE with Content-Type and accepts 204", "[openproject]") {
    Fixture f;
    f.fake->push(204, "", {});
    REQUIRE(f.client.delete_storage(7).has_value());
    auto requests = f.fake->requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].method == "DELETE");
    CHECK(requests[0].url == "https://op.example/pm/api/v3/storages/7");
    CHECK(requests[0].body.empty());
    check_common_headers(requests[0]);  // OpenProject answers 406 to a DELETE without Content-Type

    f.fake->push(404, hal_error("NotFound", "The requested resource could not be found."), hal);
    auto gone = f.client.delete_storage(7);
    REQUIRE_FALSE(gone.has_value());
    CHECK(gone.error().kind == ErrorKind::not_found);
    CHECK(gone.error().message.find("storage 7") != std::string::npos);
}

TEST_CASE("OpenProjectClient::set_oauth_client_credentials stores Nextcloud's client", "[openproject]") {
    Fixture f;
    const std::string nc_id = "nCq1w2e3r4t5y6u7i8o9p0aAsSdDfFgGhHjJkKlLzZxXcCvVbBnNmM1234567890ab";
    f.fake->push(201, R"({"_type":"OAuthClientCredentials","id":4,"clientId":")" + nc_id + R"(","confidential":true,
        "createdAt":"2025-06-01T10:00:00.000Z","updatedAt":"2025-06-01T10:00:00.000Z",
        "_links":{"self":{"href":"/api/v3/oauth_client_credentials/4"},"integration":{"href":"/api/v3/storages/7","title":"Nextcloud"}}})",
                 hal);
    auto stored = f.client.set_oauth_client_credentials(7, nc_id, Secret("Zq8secretSecretSecret"));
    REQUIRE(stored.has_value());
    CHECK(stored->client_id == nc_id);
    CHECK(stored->id == std::optional<std::int64_t>(4));

    auto requests = f.fake->requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].method == "POST");
    CHECK(requests[0].url == "https://op.example/pm/api/v3/storages/7/oauth_client_credentials");
    check_common_headers(requests[0]);
    CHECK(requests[0].body == R"({"clientId":")" + nc_id + R"(","clientSecret":"Zq8secretSecretSecret"})");

    SECTION("an answer shaped as a Storage (as the path docs claim) is read too") {
        f.fake->push(201, configured_storage, hal);
        auto r = f.client.set_oauth_client_credentials(7, nc_id, Secret("Zq8secretSecretSecret"));
        REQUIRE(r.has_value());
        CHECK(r->client_id == nc_id);
        CHECK(r->id == std::optional<std::int64_t>(4));
    }
    SECTION("another _type is a protocol error") {
        f.fake->push(201, R"({"_type":"Error"})", hal);
        auto r = f.client.set_oauth_client_credentials(7, nc_id, Secret("Zq8secretSecretSecret"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == ErrorKind::protocol);
    }
    SECTION("422 for a missing value is a validation error naming the attribute") {
        f.fake->push(422, hal_error("PropertyConstraintViolation", "Client secret can't be blank.", "clientSecret"), hal);
        auto r = f.client.set_oauth_client_credentials(7, nc_id, Secret("Zq8secretSecretSecret"));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().kind == ErrorKind::validation);
        CHECK(r.error().server_id == "clientSecret");
    }
    SECTION("empty or over-long values are refused before sending") {
        CHECK(f.client.set_oauth_client_credentials(7, "", Secret("x")).error().kind == ErrorKind::invalid_input);
        CHECK(f.client.set_oauth_client_credentials(7, nc_id, Secret("")).error().kind == ErrorKind::invalid_input);
        CHECK(f.client.set_oauth_client_credentials(7, nc_id, Secret(std::string(256, 's'))).error().kind ==
              ErrorKind::invalid_input);
        CHECK(f.fake->count() == 1);
    }
}

TEST_CASE("OpenProjectClient errors never carry the credentials", "[openproject]") {
    Fixture f;
    f.fake->push(401, hal_error("Unauthenticated", "You did not provide the correct credentials."), hal);
    auto r = f.client.set_oauth_client_credentials(7, "client", Secret("Zq8secretSecretSecret"));
    REQUIRE_FALSE(r.has_value());
    for (const std::string& text : {r.error().message, r.error().hint, r.error().server_id, r.error().server_message}) {
        CHECK(text.find("0p-t0ken") == std::string::npos);
        CHECK(text.find("Zq8secret") == std::string::npos);
    }
    f.fake->push(201, created_storage_body(false), hal);
    auto c = f.client.create_storage("Nextcloud", url("https://nc.example"));
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().describe().find(one_time_secret) == std::string::npos);
}

TEST_CASE("openproject_violations decodes only 422 violation lists", "[openproject]") {
    Error e;
    e.http_status = 422;
    e.server_id = "host:taken,name,authenticationMethod:enterprise_plan_required";
    auto v = openproject_violations(e);
    REQUIRE(v.size() == 3);
    CHECK(v[0].attribute == "host");
    CHECK(v[0].key == "taken");
    CHECK(v[1].attribute == "name");
    CHECK(v[1].key.empty());
    CHECK(v[2].attribute == "authenticationMethod");
    CHECK(v[2].key == "enterprise_plan_required");

    e.server_id = "urn:openproject-org:api:v3:errors:PropertyIsReadOnly";
    CHECK(openproject_violations(e).empty());
    e.server_id = "name:taken";
    e.http_status = 404;
    CHECK(openproject_violations(e).empty());
}

TEST_CASE("OpenProjectClient serves several threads at once", "[openproject][threads]") {
    auto fake = std::make_shared<FakeTransport>();
    fake->handler = [](const HttpRequest& request) -> FakeTransport::Answer {
        HttpResponse r;
        r.headers = hal;
        if (request.method == "POST") {
            r.status = 201;
            r.body = created_storage_body();
        } else {
            r.status = 200;
            r.body = configured_storage;
        }
        return r;
    };
    const OpenProjectClient client(fake, url("https://op.example"), Secret("0p-t0ken"));
    std::atomic<int> read{0}, created{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 25; ++i) {
                if (auto s = client.get_storage(7); s && s->configured) ++read;
                if (auto c = client.create_storage("Nextcloud", Url::parse("https://nc.example").value());
                    c && c->openproject_client_secret.expose() == one_time_secret)
                    ++created;
            }
        });
    for (auto& t : threads) t.join();
    CHECK(read.load() == 200);
    CHECK(created.load() == 200);
    CHECK(fake->count() == 400);
}

TEST_CASE("OpenProjectClient turns hostile answers into protocol errors, never exceptions", "[openproject]") {
    const std::vector<std::string> bodies = {
        "null", "[]", "\"Storage\"", "42", "{}", R"({"_type":"Storage","id":"x","name":1})",
        R"({"_type":"Storage","id":7.5,"name":"n"})", R"({"_embedded":{"elements":{}}})",
        R"({"_embedded":{"elements":[null,1]}})", R"({"_type":"Root","instanceName":["a"]})",
        R"({"_type":"User","id":null})", std::string(2000, '['), "{\"name\":\"\xC3\x28\"}"};
    for (const std::string& body : bodies) {
        INFO(body.substr(0, 60));
        Fixture f;
        for (int i = 0; i < 8; ++i) f.fake->push(200, body, hal);
        CHECK(f.client.root().error().kind == ErrorKind::protocol);
        CHECK(f.client.me().error().kind == ErrorKind::protocol);
        CHECK(f.client.list_storages().error().kind == ErrorKind::protocol);
        CHECK(f.client.get_storage(7).error().kind == ErrorKind::protocol);
        CHECK(f.client.update_storage_application_password(7, std::nullopt).error().kind == ErrorKind::protocol);
        CHECK(f.client.set_oauth_client_credentials(7, "id", Secret("secret")).error().kind == ErrorKind::protocol);
    }
}

TEST_CASE("OpenProjectClient refuses values that are not UTF-8 before sending", "[openproject]") {
    Fixture f;
    auto name = f.client.create_storage("Next\xFF" "cloud", url("https://nc.example"));
    REQUIRE_FALSE(name.has_value());
    CHECK(name.error().kind == ErrorKind::invalid_input);
    auto secret = f.client.set_oauth_client_credentials(7, "id", Secret("s\xC3"));
    REQUIRE_FALSE(secret.has_value());
    CHECK(secret.error().kind == ErrorKind::invalid_input);
    CHECK(secret.error().message.find("s\xC3") == std::string::npos);
    CHECK(f.fake->count() == 0);
}

TEST_CASE("OpenProjectClient::configuration reads the host name OpenProject builds its URLs from", "[openproject]") {
    Fixture f;
    f.fake->push(200, R"({"_type":"Configuration","maximumAttachmentFileSize":5242880,"perPageOptions":[20,100],
        "hostName":"op.example:8443","activeFeatureFlags":["built_in_oauth_applications",7],
        "_links":{"self":{"href":"/api/v3/configuration"}}})", hal);
    auto config = f.client.configuration();
    REQUIRE(config.has_value());
    CHECK(config->host_name == std::optional<std::string>("op.example:8443"));
    CHECK(config->active_feature_flags == std::vector<std::string>{"built_in_oauth_applications"});
    CHECK(f.fake->requests()[0].url == "https://op.example/pm/api/v3/configuration");
    check_common_headers(f.fake->requests()[0]);

    f.fake->push(200, R"({"_type":"Configuration","maximumAttachmentFileSize":5242880,"perPageOptions":[20]})", hal);
    auto old = f.client.configuration();
    REQUIRE(old.has_value());
    CHECK_FALSE(old->host_name.has_value());
    CHECK(old->active_feature_flags.empty());

    f.fake->push(401, hal_error("Unauthenticated", "You did not provide the correct credentials."), hal);
    CHECK(f.client.configuration().error().kind == ErrorKind::unauthenticated);
    f.fake->push(200, R"({"_type":"Root","instanceName":"x"})", hal);
    CHECK(f.client.configuration().error().kind == ErrorKind::protocol);
}
