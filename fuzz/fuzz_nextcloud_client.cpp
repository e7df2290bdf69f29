// Fuzz target: NextcloudClient's reading of Nextcloud answers (nextcloud_client.hpp): status.php,
// capabilities (with its version parsing), the integration_openproject routes and the OCS
// envelope, through a transport that answers the fuzz input (format of fuzz_input.hpp:
// "<status> <call>", headers, body).
// Checked properties besides "no crash, no undefined behaviour, no leak":
// - every Error has a message, and its text never contains the admin password (a fixed marker that
//   the client only ever sends) unless the answer itself contained it;
// - a POST /setup that succeeds carries the Nextcloud client or the app password (nothing shown
//   once is lost); a successful status() is consistent with ready().
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_input.hpp"
#include "opnc/nextcloud_client.hpp"

namespace {

[[noreturn]] void property_broken(const char* what) {
    std::fprintf(stderr, "fuzz_nextcloud_client: property broken: %s\n", what);
    std::abort();
}

constexpr std::string_view admin_password = "nc-admin-password-4f9d2c";

constexpr std::string_view calls[] = {
    "status",           "capabilities",          "check_config",   "check_admin_config",
    "project_folder_status", "openproject_url",  "setup_post",     "setup_patch",
    "reset",            "sign_terms_of_service", "probe_openproject", "dav_check",
};

const opnc::Url& url(std::string_view which) {
    static const opnc::Url openproject = *opnc::Url::parse("https://op.example");
    static const opnc::Url nextcloud = *opnc::Url::parse("https://nc.example/nextcloud");
    return which == "op" ? openproject : nextcloud;
}

// Set per input: whether the answers themselves contain the admin password. Then the server said
// it, and an Error that quotes the server is no leak of the client's.
bool input_holds_password = false;

template <class T>
void check(const opnc::Result<T>& result) {
    if (result) return;
    const opnc::Error& error = result.error();
    if (error.message.empty()) property_broken("an error without message");
    if (input_holds_password) return;
    // server_id and server_message are the server's words by definition; message and hint are opnc's.
    for (const std::string* text : {&error.message, &error.hint})
        if (text->find(admin_password) != std::string::npos) property_broken("the admin password in an error");
}

opnc::SetupValues full_setup_values() {
    opnc::SetupValues values;
    values.openproject_url = url("op");
    values.openproject_client_id = "op-client-id";
    values.openproject_client_secret = opnc::Secret("op-client-secret");
    values.default_enable_navigation = false;
    values.default_enable_unified_search = false;
    values.setup_project_folder = true;
    values.setup_app_password = true;
    return values;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    input_holds_password = std::string_view(reinterpret_cast<const char*>(data), size).find(admin_password) !=
                           std::string_view::npos;
    opnc::fuzz::ScriptedAnswers answers = opnc::fuzz::read_answers(data, size);
    const std::size_t call = opnc::fuzz::choose_call(answers.call, calls, std::size(calls));
    auto transport = std::make_shared<opnc::fuzz::ScriptedTransport>(std::move(answers.responses));
    const opnc::NextcloudClient client(transport, url("nc"), "admin", opnc::Secret(std::string(admin_password)));
    const opnc::Version app_version = opnc::Version::of(2, 9, 0);

    switch (call) {
        case 0: {
            auto status = client.status();
            check(status);
            if (status && status->ready() != (status->installed && !status->maintenance && !status->needs_db_upgrade))
                property_broken("status.ready() disagrees with its fields");
            break;
        }
        case 1: {
            auto caps = client.capabilities();
            check(caps);
            if (caps && caps->app_version) (void)caps->app_version->at_least(app_version);
            break;
        }
        case 2: {
            auto echo = client.check_config();
            check(echo);
            if (echo) (void)opnc::to_string(echo->authorization_header);
            break;
        }
        case 3: check(client.check_admin_config()); break;
        case 4: check(client.project_folder_status()); break;
        case 5: check(client.openproject_url()); break;
        case 6: {
            auto result = client.setup(opnc::SetupMethod::post, full_setup_values(), app_version);
            check(result);
            if (result && !result->nextcloud_client_secret && !result->app_password)
                property_broken("a successful POST /setup without any one-time value");
            break;
        }
        case 7: {
            opnc::SetupValues values;
            values.openproject_client_id = "op-client-id";
            values.openproject_client_secret = opnc::Secret("op-client-secret");
            check(client.setup(opnc::SetupMethod::patch, values, opnc::Version::of(2, 8, 0)));
            break;
        }
        case 8: check(client.reset()); break;
        case 9: check(client.sign_terms_of_service()); break;
        case 10: {
            auto reachability = client.probe_openproject(url("op"));
            check(reachability);
            if (reachability) (void)reachability->hint();
            break;
        }
        case 11: check(client.dav_check("OpenProject", opnc::Secret("app-password"))); break;
    }
    return 0;
}
