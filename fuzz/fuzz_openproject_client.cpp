// Fuzz target: OpenProjectClient's reading of API v3 answers (openproject_client.hpp): the HAL
// resources, collections and the error model, through a transport that answers the fuzz input
// (format of fuzz_input.hpp: "<status> <call>", headers, body, optional further answers for the
// call's follow-up requests, e.g. the storage re-read after a 422 on create).
// Checked properties besides "no crash, no undefined behaviour, no leak":
// - a successful call yields what the client promises (a created storage carries a client id and
//   secret, a stored client carries a client id);
// - every Error has a message, and the violations encoded in it can be decoded.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "fuzz_input.hpp"
#include "opnc/openproject_client.hpp"

namespace {

[[noreturn]] void property_broken(const char* what) {
    std::fprintf(stderr, "fuzz_openproject_client: property broken: %s\n", what);
    std::abort();
}

constexpr std::string_view calls[] = {
    "root",          "configuration",  "me",
    "list_storages", "get_storage",    "create_storage",
    "update_storage", "set_app_password", "delete_storage",
    "set_oauth_client_credentials",
};

const opnc::Url& url(std::string_view text) {
    // Parsed once per process; both are valid, so parse() cannot fail here.
    static const opnc::Url openproject = *opnc::Url::parse("https://op.example/openproject");
    static const opnc::Url nextcloud = *opnc::Url::parse("https://nc.example");
    return text == "op" ? openproject : nextcloud;
}

// Whatever the call returned: an Error is checked, a value is looked at.
template <class T>
void check(const opnc::Result<T>& result) {
    if (result) return;
    const opnc::Error& error = result.error();
    if (error.message.empty()) property_broken("an error without message");
    (void)opnc::openproject_violations(error);
    (void)error.describe();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    opnc::fuzz::ScriptedAnswers answers = opnc::fuzz::read_answers(data, size);
    const std::size_t call = opnc::fuzz::choose_call(answers.call, calls, std::size(calls));
    auto transport = std::make_shared<opnc::fuzz::ScriptedTransport>(std::move(answers.responses));
    const opnc::OpenProjectClient client(transport, url("op"), opnc::Secret("api-token"));

    switch (call) {
        case 0: check(client.root()); break;
        case 1: check(client.configuration()); break;
        case 2: {
            auto me = client.me();
            check(me);
            if (me) (void)me->is_active_admin();
            break;
        }
        case 3: {
            auto storages = client.list_storages();
            check(storages);
            if (storages)
                for (const auto& s : *storages) (void)s.is_nextcloud(), (void)s.uses_two_way_oauth2();
            break;
        }
        case 4: check(client.get_storage(7)); break;
        case 5: {
            auto created = client.create_storage("Nextcloud", url("nc"));
            check(created);
            if (created && (created->openproject_client_id.empty() || created->openproject_client_secret.empty()))
                property_broken("a created storage without its one-time client id or secret");
            break;
        }
        case 6: {
            opnc::StorageChanges changes;
            changes.name = "Nextcloud 2";
            changes.host = url("nc");
            check(client.update_storage(7, changes));
            break;
        }
        case 7: check(client.update_storage_application_password(7, opnc::Secret("app-password"))); break;
        case 8: check(client.delete_storage(7)); break;
        case 9: {
            auto stored = client.set_oauth_client_credentials(7, "nc-client-id", opnc::Secret("nc-client-secret"));
            check(stored);
            if (stored && stored->client_id.empty()) property_broken("a stored client without client id");
            break;
        }
    }
    return 0;
}
