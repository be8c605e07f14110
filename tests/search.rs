//! Search over HTTP against real processes: every syntax element of post search, permissions,
//! paging, bad input, people and channel search, and the same answer from every node of a
//! cluster after read-your-writes.

mod common;

use common::{single_node, team_fixture, three_nodes, Api};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Messages of a search answer, newest first.
fn messages(answer: &Value) -> Vec<String> {
    answer["order"]
        .as_array()
        .expect("order")
        .iter()
        .map(|id| {
            let id = id.as_str().expect("id");
            answer["posts"][id]["message"]
                .as_str()
                .expect("message")
                .to_string()
        })
        .collect()
}

async fn search(api: &Api, team: &str, body: Value) -> Value {
    api.ok("POST", &format!("/teams/{team}/posts/search"), Some(body))
        .await
}

async fn find(api: &Api, team: &str, terms: &str) -> Vec<String> {
    messages(&search(api, team, json!({ "terms": terms })).await)
}

/// Posts one message. Search answers newest first and breaks ties of
/// `create_at` by post id, so each post waits for the next millisecond: the
/// tests below can then name the exact order they expect.
async fn say(api: &Api, channel: &str, message: &str) -> String {
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let post = api
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": channel, "message": message})),
        )
        .await;
    post["id"].as_str().expect("post id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_search_syntax_permissions_and_bad_input() {
    let (_dir, node) = single_node().await;
    let (alice, bob, carol, team, public, private) = team_fixture(&node.api).await;
    let dm = alice
        .ok(
            "POST",
            "/channels/direct",
            Some(json!([alice.user_id, bob.user_id])),
        )
        .await;
    let dm = dm["id"].as_str().expect("dm id").to_string();

    let running = say(&alice, &public, "The runners were running #deploy-1").await;
    say(&alice, &public, "quick brown fox").await;
    say(&bob, &public, "brown quick fox jumps").await;
    say(&carol, &public, "Café au lait, deployment done").await;
    say(&alice, &private, "secret quick plans").await;
    say(&bob, &dm, "direct quick note").await;

    let f = |terms: &'static str| {
        let (alice, team) = (alice.clone(), team.clone());
        async move { find(&alice, &team, terms).await }
    };
    assert_eq!(
        f("run").await,
        ["The runners were running #deploy-1"],
        "stemming"
    );
    assert_eq!(
        f("CAFE").await,
        ["Café au lait, deployment done"],
        "case and accents"
    );
    assert_eq!(
        f("quick fox").await,
        ["brown quick fox jumps", "quick brown fox"],
        "AND, newest first"
    );
    assert_eq!(f("\"quick brown\"").await, ["quick brown fox"], "phrase");
    assert_eq!(f("fox -jumps").await, ["quick brown fox"], "excluded word");
    assert_eq!(
        f("deploy*").await,
        [
            "Café au lait, deployment done",
            "The runners were running #deploy-1"
        ],
        "prefix"
    );
    assert_eq!(
        f("#deploy-1").await,
        ["The runners were running #deploy-1"],
        "hashtag"
    );
    assert_eq!(
        f("#deploy").await,
        Vec::<String>::new(),
        "hashtags match exactly"
    );
    assert_eq!(f("from:bob fox").await, ["brown quick fox jumps"], "from:");
    assert_eq!(f("in:priv quick").await, ["secret quick plans"], "in:");
    assert_eq!(f("in:@bob quick").await, ["direct quick note"], "in:@user");
    assert_eq!(
        f("quick -in:pub -in:priv").await,
        ["direct quick note"],
        "-in:"
    );
    assert_eq!(
        f("before:2000-01-01 quick").await,
        Vec::<String>::new(),
        "before:"
    );
    assert_eq!(f("on:2000-01-01 quick").await, Vec::<String>::new(), "on:");
    assert_eq!(
        f("after:2000-01-01 from:carol").await.len(),
        1,
        "after: with from:"
    );
    let or = search(
        &alice,
        &team,
        json!({"terms": "jumps cafe", "is_or_search": true}),
    )
    .await;
    assert_eq!(
        messages(&or),
        ["Café au lait, deployment done", "brown quick fox jumps"],
        "OR"
    );
    let found = search(&alice, &team, json!({"terms": "running"})).await;
    assert_eq!(found["matches"][&running], json!(["running"]), "matches");

    // Only channels the caller is in, whatever the query says.
    assert_eq!(
        find(&carol, &team, "quick").await,
        ["brown quick fox jumps", "quick brown fox"]
    );
    assert_eq!(
        find(&carol, &team, "in:priv quick").await,
        Vec::<String>::new()
    );
    assert_eq!(find(&carol, &team, "secret").await, Vec::<String>::new());
    let all_teams = carol
        .ok(
            "POST",
            "/posts/search",
            Some(json!({"terms": "secret OR direct", "is_or_search": true})),
        )
        .await;
    assert_eq!(messages(&all_teams), Vec::<String>::new());
    let everywhere = alice
        .ok("POST", "/posts/search", Some(json!({"terms": "quick"})))
        .await;
    assert_eq!(messages(&everywhere).len(), 4);

    // Paging.
    let first = search(&alice, &team, json!({"terms": "quick", "per_page": 2})).await;
    let second = search(
        &alice,
        &team,
        json!({"terms": "quick", "per_page": 2, "page": 1}),
    )
    .await;
    assert_eq!(first["has_next"], json!(true));
    assert_eq!(second["has_next"], json!(false));
    assert_eq!(
        [messages(&first), messages(&second)].concat(),
        [
            "direct quick note",
            "secret quick plans",
            "brown quick fox jumps",
            "quick brown fox"
        ]
    );
    let answer = alice
        .call(
            "POST",
            &format!("/teams/{team}/posts/search"),
            Some(json!({"terms": "quick"})),
        )
        .await;
    assert_eq!(
        answer
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-cache, no-store, must-revalidate")
    );

    // Edits and deletes.
    alice
        .ok(
            "PUT",
            &format!("/posts/{running}/patch"),
            Some(json!({"message": "walking now"})),
        )
        .await;
    assert_eq!(f("run").await, Vec::<String>::new());
    assert_eq!(f("walk").await, ["walking now"]);
    alice.ok("DELETE", &format!("/posts/{running}"), None).await;
    assert_eq!(f("walk").await, Vec::<String>::new());

    // Bad input: a 400 in Mattermost's shape, or an empty answer; never a 5xx.
    let long = "x".repeat(10_000);
    for body in [
        json!({"terms": ""}),
        json!({}),
        json!({"terms": "*"}),
        json!({"terms": long}),
        json!({"terms": "\"unbalanced"}),
        json!({"terms": "on:2026-13-40"}),
        json!({"terms": "x", "per_page": 1000}),
        json!({"terms": "x", "page": -1}),
        json!({"terms": 5}),
    ] {
        let answer = alice
            .call(
                "POST",
                &format!("/teams/{team}/posts/search"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.body
        );
        assert_eq!(answer.body["status_code"], json!(400));
        assert!(answer.body["id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    let deep = search(
        &alice,
        &team,
        json!({"terms": "quick", "page": 1_000_000, "per_page": 200}),
    )
    .await;
    assert_eq!(messages(&deep), Vec::<String>::new());
    let stranger = Api::signup(&node.api, "dave").await;
    let refused = stranger
        .call(
            "POST",
            &format!("/teams/{team}/posts/search"),
            Some(json!({"terms": "quick"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

fn usernames(users: &Value) -> Vec<String> {
    users
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["username"].as_str().expect("username").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_and_channel_search() {
    let (_dir, node) = single_node().await;
    let (alice, bob, carol, team, _public, private) = team_fixture(&node.api).await;
    let outsider = Api::signup(&node.api, "bobby").await;

    let found = carol
        .ok("POST", "/users/search", Some(json!({"term": "bo"})))
        .await;
    assert_eq!(usernames(&found), ["bob", "bobby"]);
    assert!(
        found[0]["email"].as_str().unwrap_or("").is_empty(),
        "emails stay private"
    );
    let in_team = carol
        .ok(
            "POST",
            "/users/search",
            Some(json!({"term": "bo", "team_id": team})),
        )
        .await;
    assert_eq!(usernames(&in_team), ["bob"]);
    let not_in_channel = alice
        .ok(
            "POST",
            "/users/search",
            Some(json!({"term": "c", "team_id": team, "not_in_channel_id": private})),
        )
        .await;
    assert_eq!(usernames(&not_in_channel), ["carol"]);
    let hidden = carol
        .call(
            "POST",
            "/users/search",
            Some(json!({"term": "a", "in_channel_id": private})),
        )
        .await;
    assert_eq!(
        hidden.status,
        StatusCode::FORBIDDEN,
        "a private channel's members stay private"
    );
    let bad = carol
        .call(
            "POST",
            "/users/search",
            Some(json!({"term": "a", "limit": 5000})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let auto = bob
        .ok(
            "GET",
            &format!("/users/autocomplete?in_team={team}&in_channel={private}&name="),
            None,
        )
        .await;
    assert_eq!(usernames(&auto["users"]), ["alice", "bob"]);
    assert_eq!(usernames(&auto["out_of_channel"]), ["carol"]);
    let auto = bob
        .ok(
            "GET",
            &format!("/users/autocomplete?in_team={team}&name=b"),
            None,
        )
        .await;
    assert_eq!(usernames(&auto["users"]), ["bob"]);
    let missing_team = bob
        .call(
            "GET",
            &format!("/users/autocomplete?in_channel={private}&name=b"),
            None,
        )
        .await;
    assert_eq!(missing_team.status, StatusCode::BAD_REQUEST);

    let channels = carol
        .ok(
            "POST",
            &format!("/teams/{team}/channels/search"),
            Some(json!({"term": "pu"})),
        )
        .await;
    assert_eq!(channels.as_array().map(Vec::len), Some(1));
    assert_eq!(channels[0]["name"], "pub");
    let private_hidden = carol
        .ok(
            "POST",
            &format!("/teams/{team}/channels/search"),
            Some(json!({"term": "pri"})),
        )
        .await;
    assert_eq!(private_hidden, json!([]));
    let by_display = carol
        .ok(
            "GET",
            &format!("/teams/{team}/channels/autocomplete?name=town"),
            None,
        )
        .await;
    assert_eq!(by_display[0]["name"], "town-square");
    let mine = bob
        .ok(
            "GET",
            &format!("/teams/{team}/channels/autocomplete?name=pri"),
            None,
        )
        .await;
    assert_eq!(mine[0]["name"], "priv");
    let not_mine = carol
        .ok(
            "GET",
            &format!("/teams/{team}/channels/autocomplete?name=pri"),
            None,
        )
        .await;
    assert_eq!(not_mine, json!([]));
    // After `in:` the search box offers only the caller's own channels, private ones included.
    alice
        .ok(
            "POST",
            "/channels",
            Some(json!({"team_id": team, "name": "pubquiz", "display_name": "Pub quiz", "type": "O"})),
        )
        .await;
    let offered = carol
        .ok(
            "GET",
            &format!("/teams/{team}/channels/autocomplete?name=pubq"),
            None,
        )
        .await;
    assert_eq!(offered[0]["name"], "pubquiz");
    let for_search = |who: &Api, name: &str| {
        let path = format!("/teams/{team}/channels/search_autocomplete?name={name}");
        let who = who.clone();
        async move { who.ok("GET", &path, None).await }
    };
    assert_eq!(for_search(&carol, "pubq").await, json!([]));
    assert_eq!(for_search(&carol, "pri").await, json!([]));
    assert_eq!(for_search(&bob, "pri").await[0]["name"], "priv");
    assert_eq!(for_search(&carol, "pu").await[0]["name"], "pub");
    let outside = outsider
        .call(
            "POST",
            &format!("/teams/{team}/channels/search"),
            Some(json!({"term": "pu"})),
        )
        .await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_gives_the_same_answer() {
    let (_dir, nodes) = three_nodes().await;
    let bases: Vec<&str> = nodes.iter().map(|n| n.api.as_str()).collect();
    let (alice, _bob, _carol, team, public, _private) = team_fixture(bases[0]).await;
    for n in 0..5 {
        say(&alice, &public, &format!("replicated message number{n}")).await;
    }
    let last = alice
        .call(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "message": "replicated finale"})),
        )
        .await;
    let index = last
        .headers
        .get("x-confab-applied")
        .and_then(|v| v.to_str().ok())
        .expect("applied index")
        .to_string();
    let mut answers = Vec::new();
    for base in &bases {
        let answer = alice
            .on(base)
            .call_with(
                "POST",
                &format!("/teams/{team}/posts/search"),
                Some(json!({"terms": "replicated", "per_page": 4})),
                &[("X-Confab-Applied", &index)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answers.push((
            answer.body["order"].clone(),
            answer.body["has_next"].clone(),
        ));
    }
    assert_eq!(
        answers[0].0[0], last.body["id"],
        "the newest write is found"
    );
    assert_eq!(answers[0].0.as_array().map(Vec::len), Some(4));
    assert_eq!(answers[0].1, json!(true));
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
}
