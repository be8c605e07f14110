//! The server's fuzz corpora (`fuzz/corpus/{http_api,ws_stream}/`, and
//! `fuzz/regressions/<target>/` when present) replayed through the fuzz targets' entry points
//! (`confab::fuzzing`) on stable, without fuzzing: every input the fuzzer kept, and every one
//! that once failed, must pass. `write_seed_corpus` (ignored) writes the seeds:
//! `cargo test --release -p confab --test fuzz_corpus -- --ignored`.

use confab::fuzzing::{self, Route};
use std::path::PathBuf;

fn fuzz_dir() -> PathBuf {
    confab_storage::fuzzing::package_dir(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn replay(target: &str, run: fn(&[u8])) {
    confab_storage::fuzzing::replay_corpus(&fuzz_dir(), target, run);
}

#[test]
fn http_api_corpus() {
    replay("http_api", fuzzing::http_request);
}

#[test]
fn ws_stream_corpus() {
    replay("ws_stream", fuzzing::ws_stream);
}

/// The known value a path parameter gets in a seed, by its name (`fuzzing::http_request`).
fn known_for(param: &str) -> u8 {
    match param {
        "user_id" => 0,
        "team_id" => 3,
        "team_name" => 4,
        "channel_id" => 5,
        "channel_name" => 6,
        "post_id" | "thread_id" => 7,
        _ => 0,
    }
}

/// A seed for `route` and `method`: known values for its ids, then the query and the body.
fn http_seed(routes: &[Route], path: &str, method: &str, query: &str, body: &str) -> Vec<u8> {
    let index = routes
        .iter()
        .position(|r| r.path == path)
        .unwrap_or_else(|| panic!("no route {path}"));
    let route = &routes[index];
    let method = route
        .methods
        .iter()
        .position(|m| m.as_str() == method)
        .unwrap_or_else(|| panic!("{path} has no {method}"));
    let mut seed = (index as u16).to_le_bytes().to_vec();
    seed.push(method as u8);
    for param in route.path.split('{').skip(1) {
        let name = param.split('}').next().unwrap_or_default();
        seed.push(known_for(name));
    }
    assert!(query.len() < 256, "a seed's query fits its length byte");
    seed.push(query.len() as u8);
    seed.extend_from_slice(query.as_bytes());
    seed.extend_from_slice(body.as_bytes());
    seed
}

/// A masked client frame (mask 0, so the payload reads as written).
fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus"]
fn write_seed_corpus() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    };
    let routes = fuzzing::routes();
    // Every route with every method it serves: ids of the harness's objects, an empty object
    // as the body of a write.
    for route in &routes {
        for method in &route.methods {
            let body = if method == "GET" || method == "DELETE" {
                ""
            } else {
                "{}"
            };
            let seed = http_seed(&routes, &route.path, method.as_str(), "", body);
            let name = format!(
                "{}{}",
                method.as_str().to_ascii_lowercase(),
                route.path.replace(['/', '{', '}'], "_")
            );
            write("http_api", &name, &seed);
        }
    }
    // Real bodies and queries of the requests clients make most.
    let real: &[(&str, &str, &str, &str, &str)] = &[
        ("post", "/api/v4/posts", "POST", "", r#"{"channel_id":"@@5","message":"hi @fuzzother ~fuzz-channel #tag","root_id":"@@7","props":{"attachments":[{"text":"x","fields":[{"title":"a","value":"b"}]}]},"file_ids":[],"pending_post_id":"@@0:1"}"#),
        ("patch_post", "/api/v4/posts/{post_id}/patch", "PUT", "", r#"{"message":"edited","is_pinned":true,"props":{}}"#),
        ("posts_page", "/api/v4/channels/{channel_id}/posts", "GET", "page=0&per_page=60&since=1&before=@@7&after=@@8", ""),
        ("thread", "/api/v4/posts/{post_id}/thread", "GET", "perPage=200&fromCreateAt=1&direction=down&skipFetchThreads=false&collapsedThreads=true", ""),
        ("user", "/api/v4/users", "POST", "", r#"{"username":"u1","email":"u1@example.com","password":"passw0rd!","first_name":"U","nickname":"n"}"#),
        ("login", "/api/v4/users/login", "POST", "", r#"{"login_id":"fuzzother","password":"passw0rd!","device_id":"apple:abc"}"#),
        ("team", "/api/v4/teams", "POST", "", r#"{"name":"t2","display_name":"T","type":"O"}"#),
        ("channel", "/api/v4/channels", "POST", "", r#"{"team_id":"@@3","name":"c2","display_name":"C","type":"P","purpose":"p","header":"h"}"#),
        ("direct", "/api/v4/channels/direct", "POST", "", r#"["@@0","@@2"]"#),
        ("group", "/api/v4/channels/group", "POST", "", r#"["@@0","@@2","@@0"]"#),
        ("add_member", "/api/v4/channels/{channel_id}/members", "POST", "", r#"{"user_id":"@@2"}"#),
        ("view", "/api/v4/channels/members/{user_id}/view", "POST", "", r#"{"channel_id":"@@5","prev_channel_id":"","collapsed_threads_supported":true}"#),
        ("preferences", "/api/v4/users/{user_id}/preferences", "PUT", "", r#"[{"user_id":"@@0","category":"display_settings","name":"collapsed_reply_threads","value":"on"}]"#),
        ("reaction", "/api/v4/reactions", "POST", "", r#"{"user_id":"@@0","post_id":"@@7","emoji_name":"smile"}"#),
        ("status", "/api/v4/users/{user_id}/status", "PUT", "", r#"{"user_id":"@@0","status":"dnd","dnd_end_time":99999999999}"#),
        ("custom_status", "/api/v4/users/{user_id}/status/custom", "PUT", "", r#"{"emoji":"calendar","text":"away","duration":"today","expires_at":"2030-01-01T00:00:00Z"}"#),
        ("search", "/api/v4/teams/{team_id}/posts/search", "POST", "", r#"{"terms":"hello -x \"a b\" from:fuzzadmin in:fuzz-channel after:2020-01-01 hel*","is_or_search":false,"page":0,"per_page":20}"#),
        ("incoming_hook", "/api/v4/hooks/incoming", "POST", "", r#"{"channel_id":"@@5","display_name":"h","description":"d"}"#),
        ("command", "/api/v4/commands", "POST", "", r#"{"team_id":"@@3","trigger":"deploy","url":"http://127.0.0.1:9/","method":"P","auto_complete":true}"#),
        ("execute", "/api/v4/commands/execute", "POST", "", r#"{"channel_id":"@@5","team_id":"@@3","command":"/echo hi 3"}"#),
        ("bot", "/api/v4/bots", "POST", "", r#"{"username":"bot1","display_name":"B","description":"d"}"#),
        ("token", "/api/v4/users/{user_id}/tokens", "POST", "", r#"{"description":"ci"}"#),
        ("threads", "/api/v4/users/{user_id}/teams/{team_id}/threads", "GET", "since=0&deleted=true&unread=false&threadsOnly=true&totalsOnly=false&pageSize=25&extended=true", ""),
        ("draft", "/api/v4/drafts", "POST", "", r#"{"user_id":"@@0","channel_id":"@@5","root_id":"","message":"draft","props":{},"file_ids":[]}"#),
        ("ids", "/api/v4/users/ids", "POST", "", r#"["@@0","@@2","zzz"]"#),
        ("autocomplete", "/api/v4/users/autocomplete", "GET", "in_team=@@3&in_channel=@@5&name=fu&limit=25", ""),
        ("search_users", "/api/v4/users/search", "POST", "", r#"{"term":"fuzz","team_id":"@@3","allow_inactive":true,"limit":100}"#),
        ("patch_channel", "/api/v4/channels/{channel_id}/patch", "PUT", "", r#"{"display_name":"D","header":"h","purpose":"p"}"#),
        ("notify_props", "/api/v4/channels/{channel_id}/members/{user_id}/notify_props", "PUT", "", r#"{"desktop":"all","push":"mention","mark_unread":"all","ignore_channel_mentions":"on"}"#),
        ("roles", "/api/v4/roles/names", "POST", "", r#"["system_user","team_user","channel_admin"]"#),
        ("unread", "/api/v4/users/{user_id}/posts/{post_id}/set_unread", "POST", "", r#"{"collapsed_threads_supported":true}"#),
    ];
    for (name, path, method, query, body) in real {
        write(
            "http_api",
            &format!("real_{name}"),
            &http_seed(&routes, path, method, query, body),
        );
    }

    // WebSocket streams: first byte 1 = authenticated by the admin's session, 3 = also asking
    // to resume, 0 = not authenticated.
    let text = |json: &str| frame(1, true, json.as_bytes());
    let ws: &[(&str, u8, Vec<Vec<u8>>)] = &[
        (
            "challenge_bad_token",
            0,
            vec![text(
                r#"{"seq":1,"action":"authentication_challenge","data":{"token":"nope"}}"#,
            )],
        ),
        (
            "unauthenticated_ping",
            0,
            vec![text(r#"{"seq":1,"action":"ping"}"#)],
        ),
        (
            "ping",
            1,
            vec![
                text(r#"{"seq":1,"action":"ping"}"#),
                frame(9, true, b"hb"),
                frame(10, true, b""),
            ],
        ),
        (
            "typing",
            1,
            vec![text(
                r#"{"seq":2,"action":"user_typing","data":{"channel_id":"xxxxxxxxxxxxxxxxxxxxxxxxxx","parent_id":""}}"#,
            )],
        ),
        (
            "statuses",
            1,
            vec![
                text(r#"{"seq":3,"action":"get_statuses"}"#),
                text(r#"{"seq":4,"action":"get_statuses_by_ids","data":{"user_ids":["a","b"]}}"#),
            ],
        ),
        (
            "presence",
            1,
            vec![
                text(r#"{"seq":5,"action":"presence","data":{"channel_id":"x"}}"#),
                text(
                    r#"{"seq":6,"action":"user_update_active_status","data":{"user_is_active":true,"manual":false}}"#,
                ),
            ],
        ),
        (
            "unknown_action",
            1,
            vec![
                text(r#"{"seq":7,"action":"nope"}"#),
                text(r#"{"seq":8}"#),
                text("not json"),
            ],
        ),
        (
            "fragments",
            1,
            vec![
                frame(1, false, b"{\"seq\":9,"),
                frame(0, true, b"\"action\":\"ping\"}"),
            ],
        ),
        (
            "binary_and_close",
            1,
            vec![frame(2, true, b"\x00\x01"), frame(8, true, b"\x03\xe8bye")],
        ),
        (
            "long_lengths",
            1,
            vec![text(&format!(
                r#"{{"seq":10,"action":"ping","pad":"{}"}}"#,
                "x".repeat(300)
            ))],
        ),
        ("resume", 3, vec![text(r#"{"seq":1,"action":"ping"}"#)]),
    ];
    for (name, how, frames) in ws {
        let mut seed = vec![*how];
        for f in frames {
            seed.extend_from_slice(f);
        }
        write("ws_stream", name, &seed);
    }
    let mut huge = vec![1u8];
    huge.extend_from_slice(&frame(1, true, &vec![b' '; 70_000]));
    write("ws_stream", "over_the_message_limit", &huge);
}
