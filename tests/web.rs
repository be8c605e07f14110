//! The web client's serving on a real node: the bundled page at `/` and at every client route,
//! hashed assets cached for a year and revalidated by ETag, and the API's JSON 404 kept for
//! `/api/*` and for methods other than GET. `make test` bundles `web/` before building, so the
//! binary under test embeds `web/dist`; the test reads the same files to know the asset names.

mod common;

use common::single_node;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;

fn bundled_index() -> String {
    let path = common::repo_root().join("web/dist/index.html");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} missing ({e}): run `make web`", path.display()))
}

/// The `/static/…` names `index.html` refers to.
fn asset_paths(index: &str) -> Vec<String> {
    index
        .split('"')
        .filter(|part| part.starts_with("/static/"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_its_assets_and_client_routes_are_served() {
    let (_dir, node) = single_node().await;
    let base = node.api.clone();
    let http = reqwest::Client::new();
    let index = bundled_index();

    for route in [
        "/",
        "/login",
        "/alpha/channels/town-square",
        "/alpha/pl/abc",
        "/alpha/threads",
    ] {
        let answer = http
            .get(format!("{base}{route}"))
            .send()
            .await
            .expect("get");
        assert_eq!(answer.status(), StatusCode::OK, "{route}");
        assert_eq!(
            answer.headers()[CONTENT_TYPE].to_str().unwrap_or(""),
            "text/html",
            "{route}"
        );
        assert_eq!(answer.headers()[CACHE_CONTROL], "no-cache", "{route}");
        assert_eq!(answer.text().await.expect("body"), index, "{route}");
    }

    let assets = asset_paths(&index);
    assert!(
        assets.iter().any(|a| a.ends_with(".js")),
        "a script: {assets:?}"
    );
    for asset in &assets {
        let answer = http
            .get(format!("{base}{asset}"))
            .send()
            .await
            .expect("get");
        assert_eq!(answer.status(), StatusCode::OK, "{asset}");
        assert_eq!(
            answer.headers()[CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let kind = answer.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .to_string();
        assert!(
            kind.contains(if asset.ends_with(".js") {
                "javascript"
            } else {
                "css"
            }),
            "{asset}: {kind}"
        );
        let etag = answer.headers()[ETAG].clone();
        let on_disk = std::fs::read(common::repo_root().join(format!("web/dist{asset}")))
            .expect("asset on disk");
        assert_eq!(
            answer.bytes().await.expect("body").as_ref(),
            on_disk.as_slice()
        );
        let again = http
            .get(format!("{base}{asset}"))
            .header(IF_NONE_MATCH, etag)
            .send()
            .await
            .expect("get");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{asset}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_its_json_404_and_other_methods_are_not_the_page() {
    let (_dir, node) = single_node().await;
    let base = node.api.clone();
    let http = reqwest::Client::new();
    for (method, path) in [
        ("GET", "/api/v4/no/such/route"),
        ("GET", "/api/v3/users"),
        ("GET", "/hooks/no-such-hook/at/all"),
        ("POST", "/alpha/channels/town-square"),
        ("DELETE", "/"),
    ] {
        let answer = http
            .request(method.parse().expect("method"), format!("{base}{path}"))
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let body: serde_json::Value = answer.json().await.expect("json");
        assert_eq!(body["status_code"], 404, "{method} {path}: {body}");
        assert_eq!(body["id"], "api.context.404.app_error");
    }
}
