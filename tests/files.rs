//! Files over HTTP against real processes: the three upload shapes, every read route with Range
//! and download headers, attach rules and permissions, 413, a decompression bomb, a 50 MiB file
//! through a follower of a 3-node cluster, a node killed mid-upload, and a node added later that
//! catches up by snapshot.

mod common;

use common::{confab_bin, eventually, metrics, team_fixture, three_nodes_with, Api, Node, Socket};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

const MIB: usize = 1 << 20;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn bearer(api: &Api) -> String {
    format!("Bearer {}", api.token.as_deref().expect("logged in"))
}

/// Deterministic pseudo-random bytes (incompressible enough, cheap to make).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// A PNG of `w`×`h` solid pixels.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 120, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// A decompression bomb: a valid 1-bit PNG of 20000×20000 zero pixels, about 50 KB on disk and
/// 400 million pixels decoded.
fn bomb_png() -> Vec<u8> {
    use std::io::Write;
    let (w, h) = (20_000u32, 20_000u32);
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // 1-bit grayscale
    chunk(&mut out, b"IHDR", &ihdr);
    let row = vec![0u8; 1 + (w as usize).div_ceil(8)];
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..h {
        z.write_all(&row).expect("deflate");
    }
    chunk(&mut out, b"IDAT", &z.finish().expect("deflate"));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// `POST /files` as streamed multipart: `channel_id`, `client_ids`, then the files.
async fn upload_multipart(
    api: &Api,
    channel: &str,
    files: &[(&str, Vec<u8>)],
    client_ids: &[&str],
) -> (StatusCode, Value) {
    let mut form = Form::new().text("channel_id", channel.to_string());
    for id in client_ids {
        form = form.text("client_ids", id.to_string());
    }
    for (name, bytes) in files {
        form = form.part(
            "files",
            Part::bytes(bytes.clone()).file_name(name.to_string()),
        );
    }
    let answer = client()
        .post(format!("{}/api/v4/files", api.base))
        .header("Authorization", bearer(api))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// `POST /files?channel_id=&filename=` with the raw bytes as the body.
async fn upload_raw(api: &Api, channel: &str, name: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let answer = client()
        .post(format!(
            "{}/api/v4/files?channel_id={channel}&filename={name}&client_id=raw1",
            api.base
        ))
        .header("Authorization", bearer(api))
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

fn file_id(answer: &Value, n: usize) -> String {
    answer["file_infos"][n]["id"]
        .as_str()
        .expect("file id")
        .to_string()
}

struct Download {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

async fn get(api: &Api, path: &str, headers: &[(&str, &str)]) -> Download {
    let mut request = client()
        .get(format!("{}/api/v4{path}", api.base))
        .header("Authorization", bearer(api));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer = request.send().await.expect("download");
    Download {
        status: answer.status(),
        headers: answer.headers().clone(),
        body: answer.bytes().await.expect("body").to_vec(),
    }
}

/// The file, once the node `api` talks to has it (a node catching up may not yet).
async fn download_once_there(api: &Api, id: &str) -> Download {
    eventually(Duration::from_secs(30), "the file on the node", || {
        let api = api.clone();
        let id = id.to_string();
        async move {
            let got = get(&api, &format!("/files/{id}"), &[]).await;
            (got.status == StatusCode::OK).then_some(got)
        }
    })
    .await
}

fn header<'a>(download: &'a Download, name: &str) -> &'a str {
    download
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_in_every_shape_and_every_read_route() {
    let (_dir, node) = common::single_node_with(&["--upload-abandon-secs", "2"]).await;
    let base = node.api.clone();
    let (alice, bob, carol, team, public, private) = team_fixture(&base).await;
    let text = b"hello files, 0123456789".to_vec();
    let picture = png(300, 200);

    // Streamed multipart, with client ids.
    let (status, answer) = upload_multipart(
        &alice,
        &private,
        &[("notes.txt", text.clone()), ("pic.PNG", picture.clone())],
        &["c1", "c2"],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["client_ids"], json!(["c1", "c2"]));
    let (text_id, pic_id) = (file_id(&answer, 0), file_id(&answer, 1));
    let info = &answer["file_infos"][0];
    assert_eq!(info["name"], "notes.txt");
    assert_eq!(info["extension"], "txt");
    assert_eq!(info["size"], text.len());
    assert_eq!(info["mime_type"], "text/plain");
    assert_eq!(info["channel_id"], private.as_str());
    assert_eq!(info["user_id"], alice.user_id.as_str());
    assert!(info.get("post_id").is_none() && info.get("width").is_none());
    assert!(info["mini_preview"].is_null());
    let pic = &answer["file_infos"][1];
    assert_eq!(
        (pic["width"].as_u64(), pic["height"].as_u64()),
        (Some(300), Some(200))
    );
    assert_eq!(pic["extension"], "png");
    assert_eq!(pic["mime_type"], "image/png");
    assert_eq!(pic["has_preview_image"], true);
    assert!(pic["mini_preview"].as_str().is_some_and(|s| !s.is_empty()));

    // Legacy multipart: the file part comes before channel_id.
    let form = Form::new()
        .part(
            "files",
            Part::bytes(b"legacy".to_vec()).file_name("legacy.txt"),
        )
        .text("channel_id", private.clone());
    let legacy = client()
        .post(format!("{base}/api/v4/files"))
        .header("Authorization", bearer(&alice))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), StatusCode::CREATED);
    let legacy: Value = legacy.json().await.unwrap();
    assert_eq!(legacy["file_infos"][0]["name"], "legacy.txt");
    assert_eq!(legacy["client_ids"], json!([]));

    // Raw body.
    let raw_bytes = random_bytes(3 * MIB + 17, 1);
    let (status, raw) = upload_raw(&alice, &private, "data.bin", raw_bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{raw}");
    assert_eq!(raw["client_ids"], json!(["raw1"]));
    let raw_id = file_id(&raw, 0);

    // Bad uploads: no channel, a channel the caller is not in, a mismatched client id count.
    let form = Form::new().part("files", Part::bytes(b"x".to_vec()).file_name("x.txt"));
    let answer = client()
        .post(format!("{base}/api/v4/files"))
        .header("Authorization", bearer(&alice))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let (status, _) = upload_multipart(&carol, &private, &[("x.txt", b"x".to_vec())], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        upload_multipart(&alice, &private, &[("x.txt", b"x".to_vec())], &["a", "b"]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The original, whole: headers as Mattermost sends them.
    let whole = get(&alice, &format!("/files/{raw_id}"), &[]).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(sha256(&whole.body), sha256(&raw_bytes));
    assert_eq!(
        header(&whole, "content-length"),
        raw_bytes.len().to_string()
    );
    assert_eq!(header(&whole, "content-type"), "application/octet-stream");
    assert!(header(&whole, "content-disposition").starts_with("attachment;filename=\"data.bin\""));
    assert_eq!(header(&whole, "accept-ranges"), "bytes");
    // Ranges, across a chunk boundary, open-ended, suffix, unsatisfiable.
    let start = MIB - 3;
    let range = get(
        &alice,
        &format!("/files/{raw_id}"),
        &[("Range", &format!("bytes={start}-{}", start + 9))],
    )
    .await;
    assert_eq!(range.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(range.body, raw_bytes[start..start + 10]);
    assert_eq!(
        header(&range, "content-range"),
        format!("bytes {start}-{}/{}", start + 9, raw_bytes.len())
    );
    assert_eq!(header(&range, "content-length"), "10");
    let tail = get(
        &alice,
        &format!("/files/{raw_id}"),
        &[("Range", "bytes=-5")],
    )
    .await;
    assert_eq!(tail.body, raw_bytes[raw_bytes.len() - 5..]);
    let open = get(
        &alice,
        &format!("/files/{raw_id}"),
        &[("Range", &format!("bytes={}-", 2 * MIB))],
    )
    .await;
    assert_eq!(open.body, raw_bytes[2 * MIB..]);
    let past = get(
        &alice,
        &format!("/files/{raw_id}"),
        &[("Range", &format!("bytes={}-", raw_bytes.len()))],
    )
    .await;
    assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);
    // Several ranges: one multipart/byteranges answer, each part with its Content-Range, in the
    // order asked; one across a chunk boundary.
    let size = raw_bytes.len();
    let several = get(
        &alice,
        &format!("/files/{raw_id}"),
        &[("Range", &format!("bytes=0-4, {}-{}, -3", MIB - 2, MIB + 2))],
    )
    .await;
    assert_eq!(several.status, StatusCode::PARTIAL_CONTENT);
    let content_type = header(&several, "content-type").to_string();
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("{content_type}"));
    assert_eq!(
        header(&several, "content-length"),
        several.body.len().to_string()
    );
    let expected: Vec<(usize, usize)> = vec![(0, 4), (MIB - 2, MIB + 2), (size - 3, size - 1)];
    let mut rest: &[u8] = &several.body;
    for (n, (start, end)) in expected.iter().enumerate() {
        let head = format!(
            "{}--{boundary}\r\nContent-Range: bytes {start}-{end}/{size}\r\nContent-Type: application/octet-stream\r\n\r\n",
            if n == 0 { "" } else { "\r\n" }
        );
        assert!(
            rest.starts_with(head.as_bytes()),
            "part {n}: {:?}",
            String::from_utf8_lossy(&rest[..rest.len().min(200)])
        );
        rest = &rest[head.len()..];
        assert_eq!(
            &rest[..end - start + 1],
            &raw_bytes[*start..=*end],
            "part {n}"
        );
        rest = &rest[end - start + 1..];
    }
    assert_eq!(rest, format!("\r\n--{boundary}--\r\n").as_bytes());
    // Ranges asking for more than the file together get the whole file, as Go's ServeContent.
    let greedy = get(
        &alice,
        &format!("/files/{raw_id}"),
        &[("Range", "bytes=0-, 0-")],
    )
    .await;
    assert_eq!(greedy.status, StatusCode::OK);
    assert_eq!(greedy.body.len(), size);
    // An image is inline unless downloaded.
    let shown = get(&alice, &format!("/files/{pic_id}"), &[]).await;
    assert_eq!(shown.body, picture);
    assert_eq!(header(&shown, "content-type"), "image/png");
    assert!(header(&shown, "content-disposition").starts_with("inline;"));
    let downloaded = get(&alice, &format!("/files/{pic_id}?download=1"), &[]).await;
    assert!(header(&downloaded, "content-disposition").starts_with("attachment;"));

    // Thumbnail 150×100 (a 3:2 image is 100 high), preview at its size, both JPEG.
    let thumb = get(&alice, &format!("/files/{pic_id}/thumbnail"), &[]).await;
    assert_eq!(thumb.status, StatusCode::OK);
    assert_eq!(header(&thumb, "content-type"), "image/jpeg");
    let decoded = image::load_from_memory(&thumb.body).expect("thumbnail is an image");
    assert_eq!((decoded.width(), decoded.height()), (150, 100));
    let preview = get(&alice, &format!("/files/{pic_id}/preview"), &[]).await;
    let decoded = image::load_from_memory(&preview.body).expect("preview is an image");
    assert_eq!((decoded.width(), decoded.height()), (300, 200));
    let none = get(&alice, &format!("/files/{text_id}/thumbnail"), &[]).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    let info = get(&alice, &format!("/files/{text_id}/info"), &[]).await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(header(&info, "cache-control"), "max-age=2592000, private");
    let info: Value = serde_json::from_slice(&info.body).unwrap();
    assert_eq!(info["id"], text_id.as_str());
    // Public links are off by default.
    assert_eq!(
        get(&alice, &format!("/files/{text_id}/link"), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Before it is attached, only the uploader reads a file.
    for path in ["", "/info", "/thumbnail", "/preview"] {
        let seen = get(&bob, &format!("/files/{pic_id}{path}"), &[]).await;
        assert_eq!(seen.status, StatusCode::FORBIDDEN, "bob reads {path}");
    }
    // A guessed id is not found.
    let guessed = get(&bob, "/files/aaaaaaaaaaaaaaaaaaaaaaaaaa", &[]).await;
    assert_eq!(guessed.status, StatusCode::NOT_FOUND);

    // Bob's upload in the same channel cannot be attached by alice; an unknown id is dropped.
    let (_, bobs) = upload_multipart(&bob, &private, &[("bob.txt", b"bob".to_vec())], &[]).await;
    let bobs_id = file_id(&bobs, 0);
    let mut socket = Socket::connect(&base, bob.token.as_deref().unwrap()).await;
    let post = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({
                "channel_id": private,
                "message": "with files",
                "file_ids": [text_id, pic_id, bobs_id, "aaaaaaaaaaaaaaaaaaaaaaaaaa"],
            })),
        )
        .await;
    assert_eq!(post["file_ids"], json!([text_id, pic_id]));
    let files = post["metadata"]["files"]
        .as_array()
        .expect("metadata.files");
    assert_eq!(files.len(), 2);
    assert_eq!(files[1]["id"], pic_id.as_str());
    let post_id = post["id"].as_str().unwrap().to_string();
    assert_eq!(files[0]["post_id"], post_id.as_str());
    let posted = socket.wait_event("posted", Duration::from_secs(10)).await;
    let event_post: Value =
        serde_json::from_str(posted["data"]["post"].as_str().expect("post text")).unwrap();
    assert_eq!(event_post["file_ids"], json!([text_id, pic_id]));
    // The root of a thread carries its files in the threads list and in `thread_updated`.
    let mut alices = Socket::connect(&base, alice.token.as_deref().unwrap()).await;
    bob.ok(
        "POST",
        "/posts",
        Some(json!({"channel_id": private, "message": "a reply", "root_id": post_id})),
    )
    .await;
    let updated = alices
        .wait_event("thread_updated", Duration::from_secs(10))
        .await;
    let thread: Value =
        serde_json::from_str(updated["data"]["thread"].as_str().expect("thread text")).unwrap();
    assert_eq!(thread["post"]["id"], post_id.as_str());
    assert_eq!(
        thread["post"]["metadata"]["files"][1]["id"],
        pic_id.as_str()
    );
    let threads = alice
        .ok(
            "GET",
            &format!("/users/{}/teams/{team}/threads", alice.user_id),
            None,
        )
        .await;
    let listed = threads["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .find(|t| t["id"] == post_id.as_str())
        .expect("the thread is listed");
    let root_files = listed["post"]["metadata"]["files"]
        .as_array()
        .expect("the root's metadata.files");
    assert_eq!(root_files.len(), 2);
    assert_eq!(root_files[0]["id"], text_id.as_str());
    // A file attaches once.
    let again = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": private, "message": "again", "file_ids": [text_id]})),
        )
        .await;
    assert_eq!(again["file_ids"], json!([]));
    // Members of the post's channel now read it; others (carol) still cannot.
    let seen = get(&bob, &format!("/files/{pic_id}"), &[]).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(seen.body, picture);
    for path in ["", "/info", "/thumbnail", "/preview"] {
        let seen = get(&carol, &format!("/files/{pic_id}{path}"), &[]).await;
        assert_eq!(seen.status, StatusCode::FORBIDDEN, "carol reads {path}");
    }
    let listed = bob
        .ok("GET", &format!("/posts/{post_id}/files/info"), None)
        .await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert_eq!(ids, vec![text_id.as_str(), pic_id.as_str()]);
    assert_eq!(
        carol
            .call("GET", &format!("/posts/{post_id}/files/info"), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The post read back carries its files too.
    let read = bob.ok("GET", &format!("/posts/{post_id}"), None).await;
    assert_eq!(read["metadata"]["files"].as_array().map(Vec::len), Some(2));

    // The same bytes uploaded again are stored once.
    let blobs_before = metrics(&base).await["confab_files_blobs"];
    let (status, _) = upload_raw(&bob, &public, "copy.bin", raw_bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(metrics(&base).await["confab_files_blobs"], blobs_before);
    // Uploads refused after their bytes were staged (no permission, a shape that failed) leave
    // chunks only until the leader's reaper reclaims them.
    eventually(Duration::from_secs(90), "refused uploads reclaimed", || {
        let base = base.clone();
        async move { (metrics(&base).await["confab_files_staged_uploads"] == 0.0).then_some(()) }
    })
    .await;
}

/// The node's resident memory, in bytes.
fn rss_bytes(node: &Node) -> u64 {
    let pid = node.child.as_ref().expect("running").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_is_413_and_a_bomb_uploads_without_preview() {
    let (_dir, node) = common::single_node_with(&["--max-file-size", "2000000"]).await;
    let base = node.api.clone();
    let (alice, _bob, _carol, _team, public, _private) = team_fixture(&base).await;
    let answer = client()
        .post(format!(
            "{base}/api/v4/files?channel_id={public}&filename=big.bin"
        ))
        .header("Authorization", bearer(&alice))
        .body(vec![7u8; 2_000_001])
        .send()
        .await
        .expect("an answer, not a broken connection");
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let error: Value = answer.json().await.unwrap();
    assert_eq!(
        error["id"],
        "api.file.upload_file.too_large_detailed.app_error"
    );
    assert_eq!(error["status_code"], 413);
    // At the limit is fine.
    let (status, _) = upload_raw(&alice, &public, "edge.bin", vec![7u8; 2_000_000]).await;
    assert_eq!(status, StatusCode::CREATED);

    let bomb = bomb_png();
    assert!(
        bomb.len() < 200_000,
        "the bomb is small: {} bytes",
        bomb.len()
    );
    let before = rss_bytes(&node);
    let (status, answer) =
        upload_multipart(&alice, &public, &[("bomb.png", bomb.clone())], &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let info = &answer["file_infos"][0];
    assert!(info.get("has_preview_image").is_none(), "{info}");
    assert!(info["mini_preview"].is_null());
    let after = rss_bytes(&node);
    // 400 million pixels would take 400 MB decoded; the node did not decode them.
    assert!(
        after < before + (100 << 20),
        "RSS grew from {before} to {after} bytes"
    );
    let id = file_id(&answer, 0);
    let stored = get(&alice, &format!("/files/{id}"), &[]).await;
    assert_eq!(stored.body, bomb);
    assert_eq!(
        get(&alice, &format!("/files/{id}/preview"), &[])
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mib_file_through_a_follower_reads_identically_from_every_node() {
    // Memtables bounded to 16 MiB, so what the RSS shows beyond them is the upload's own.
    let (_dir, nodes) = three_nodes_with(&["--write-buffer-mib", "16"]).await;
    let (alice, _bob, _carol, _team, public, _private) = team_fixture(&nodes[0].api).await;
    // Upload through a node that is not the leader.
    let status = alice.ok("GET", "/cluster/status", None).await;
    let leader = status["leader"].as_u64().expect("a leader");
    let follower = nodes.iter().find(|n| n.id != leader).expect("a follower");
    let uploader = alice.on(&follower.api);
    let bytes = random_bytes(50 * MIB, 7);
    let digest = sha256(&bytes);
    let before = rss_bytes(follower);
    let (status, answer) = upload_raw(&uploader, &public, "fifty.bin", bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let after = rss_bytes(follower);
    assert_eq!(answer["file_infos"][0]["size"], 50 * MIB);
    let id = file_id(&answer, 0);
    for node in &nodes {
        let api = alice.on(&node.api);
        let download = download_once_there(&api, &id).await;
        assert_eq!(download.body.len(), 50 * MIB, "node {}", node.id);
        assert_eq!(sha256(&download.body), digest, "node {}", node.id);
    }
    // The upload streamed: the node did not hold the file (50 MiB) in memory on top of its
    // baseline, let alone several copies of it. What it does hold after 50 MiB of writes is the
    // memtables (16 MiB here), the allocator's free lists and recent log entries: one CI run
    // measured 48.1 MiB of growth, so the bound is 64 MiB; a whole buffered copy with the
    // memtables would be above it.
    assert!(
        after < before + (64 << 20),
        "uploader RSS grew from {before} to {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_snapshot_and_purge_the_log_by_size_on_every_node() {
    // A snapshot once 8 MiB of log piled up, 2 MiB kept behind it; by entry count, never.
    let (_dir, mut nodes) =
        three_nodes_with(&["--snapshot-every", "1000000", "--snapshot-log-mib", "8"]).await;
    let (alice, _bob, _carol, _team, public, _private) = team_fixture(&nodes[0].api).await;
    let mut uploaded = Vec::new();
    for n in 0..6u64 {
        let bytes = random_bytes(4 * MIB, 300 + n);
        let (status, answer) =
            upload_raw(&alice, &public, &format!("big{n}.bin"), bytes.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        uploaded.push((file_id(&answer, 0), sha256(&bytes)));
    }
    // 24 MiB went through the log. Every node snapshots and purges its own log: what it holds
    // is at most the 8 MiB threshold plus what is kept behind the snapshot (and this 24 MiB
    // were all there without the size rule).
    for node in &nodes {
        eventually(
            Duration::from_secs(60),
            "the log snapshotted and purged by size",
            || {
                let base = node.api.clone();
                async move {
                    let m = metrics(&base).await;
                    let snapshots = m.get("confab_raft_snapshots_built_total").copied()?
                        + m.get("confab_raft_snapshots_installed_total").copied()?;
                    let log = m.get("confab_raft_log_bytes").copied()?;
                    (snapshots >= 1.0 && log > 0.0 && log < (12 * MIB) as f64).then_some(())
                }
            },
        )
        .await;
    }
    // openraft reports the purge a little after it ran.
    eventually(
        Duration::from_secs(30),
        "every node's purge reported",
        || {
            let alice = alice.clone();
            async move {
                let status = alice.ok("GET", "/cluster/status", None).await;
                let purged: Vec<u64> = status["members"]
                    .as_array()?
                    .iter()
                    .filter_map(|m| m["purged_index"].as_u64())
                    .filter(|p| *p > 0)
                    .collect();
                (purged.len() == 3).then_some(())
            }
        },
    )
    .await;

    // A restarted node reads its kept log's size back and serves every file.
    nodes[2].restart();
    nodes[2].wait_ready().await;
    for node in &nodes {
        let api = alice.on(&node.api);
        for (id, digest) in &uploaded {
            let download = download_once_there(&api, id).await;
            assert_eq!(&sha256(&download.body), digest, "node {}", node.id);
        }
    }
    let m = metrics(&nodes[2].api).await;
    assert!(
        m.get("confab_raft_log_bytes").copied().unwrap_or(0.0) < (12 * MIB) as f64,
        "{:?}",
        m.get("confab_raft_log_bytes")
    );
}

type Metrics = std::collections::HashMap<String, f64>;

/// The node's `/metrics` once they satisfy `holds` (within `timeout`).
async fn metrics_once(
    base: &str,
    timeout: Duration,
    what: &str,
    holds: impl Fn(&Metrics) -> bool,
) -> Metrics {
    eventually(timeout, what, || async {
        let m = metrics(base).await;
        holds(&m).then_some(m)
    })
    .await
}

/// Uploads abandoned after 2 s, and blob garbage past 1 MiB collected every second.
const RECLAIM_QUICKLY: &[&str] = &[
    "--upload-abandon-secs",
    "2",
    "--blob-reclaim-secs",
    "1",
    "--blob-reclaim-min-mib",
    "1",
];

/// A raw upload whose body trickles out over time (≈ 5 MiB/s), so a node can be killed or
/// the client can go away mid-way; its bytes are [`trickled_bytes`]`(total, seed)`.
async fn slow_upload(
    api: Api,
    channel: String,
    total: usize,
    seed: u64,
) -> Result<(StatusCode, Value), String> {
    let pieces = total / TRICKLE_PIECE;
    let stream = futures_util::stream::unfold(0usize, move |n| async move {
        if n == pieces {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let piece = bytes::Bytes::from(trickle_piece(seed, n));
        Some((Ok::<_, std::io::Error>(piece), n + 1))
    });
    let answer = client()
        .post(format!(
            "{}/api/v4/files?channel_id={channel}&filename=slow.bin",
            api.base
        ))
        .header("Authorization", bearer(&api))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    let body = answer.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

const TRICKLE_PIECE: usize = 256 << 10;

fn trickle_piece(seed: u64, n: usize) -> Vec<u8> {
    random_bytes(TRICKLE_PIECE, seed * 1_000_000 + n as u64)
}

/// The bytes [`slow_upload`] sends.
fn trickled_bytes(total: usize, seed: u64) -> Vec<u8> {
    (0..total / TRICKLE_PIECE)
        .flat_map(|n| trickle_piece(seed, n))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_upload_leaves_no_half_file_and_its_chunks_are_reclaimed() {
    let (_dir, mut nodes) = three_nodes_with(RECLAIM_QUICKLY).await;
    let (alice, _bob, _carol, _team, public, _private) = team_fixture(&nodes[0].api).await;
    let uploader = alice.on(&nodes[1].api);
    let upload = tokio::spawn(slow_upload(uploader, public.clone(), 16 * MIB, 1));
    // Wait until chunks of it are in the log, then kill the node taking it.
    let watched = nodes[0].api.clone();
    eventually(Duration::from_secs(30), "an upload in progress", || {
        let base = watched.clone();
        async move { (metrics(&base).await["confab_files_staged_uploads"] >= 1.0).then_some(()) }
    })
    .await;
    nodes[1].kill();
    let outcome = upload.await.expect("upload task");
    assert!(
        !matches!(outcome, Ok((StatusCode::CREATED, _))),
        "an upload cut short does not succeed: {outcome:?}"
    );
    nodes[1].restart();
    nodes[1].wait_ready().await;
    // The staged chunks are reclaimed on every node (the reaper runs on the leader).
    for node in &nodes {
        metrics_once(
            &node.api,
            Duration::from_secs(90),
            "staged chunks reclaimed",
            |m| m["confab_files_staged_uploads"] == 0.0,
        )
        .await;
    }
    // And their space: no blob file of this node holds the aborted chunk any more (a blob
    // file left all garbage is deleted by the reclaimer's key compaction; one with live blobs
    // too is collected, see `an_aborted_uploads_space_is_reclaimed…`).
    for node in &nodes {
        metrics_once(
            &node.api,
            Duration::from_secs(60),
            "blob space of the aborted chunks freed",
            |m| {
                m["confab_files_blob_garbage_bytes"] == 0.0
                    && m["confab_files_blob_file_bytes"] == 0.0
            },
        )
        .await;
    }
    // Nothing of it is attached or listed: a post with no files is all alice can make.
    let post = alice
        .ok(
            "POST",
            "/posts",
            Some(json!({"channel_id": public, "message": "after the crash"})),
        )
        .await;
    assert_eq!(post["file_ids"], json!([]));
    // And the cluster still takes uploads through the restarted node.
    let (status, _) = upload_raw(
        &alice.on(&nodes[1].api),
        &public,
        "after.txt",
        b"ok".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_uploads_space_is_reclaimed_on_every_node_beside_a_live_file() {
    // The reclaimer flushes the chunk family every second, so chunks reach blob files while
    // the uploads stream; garbage above 1 MiB (and a quarter of the blob bytes) is collected.
    let (_dir, nodes) = three_nodes_with(RECLAIM_QUICKLY).await;
    let (alice, _bob, _carol, _team, public, _private) = team_fixture(&nodes[0].api).await;
    let uploader = alice.on(&nodes[1].api);
    // Two uploads trickle at once, so their chunks interleave in the log and every flush while
    // both stream (the reclaimer flushes every second) holds chunks of each: one finishes, the
    // client of the other goes away.
    let abandoned = tokio::spawn(slow_upload(uploader.clone(), public.clone(), 16 * MIB, 1));
    let (status, answer) = slow_upload(uploader.clone(), public.clone(), 3 * MIB, 2)
        .await
        .expect("the live upload");
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let live = trickled_bytes(3 * MIB, 2);
    let live_id = file_id(&answer, 0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The other client goes away: its staged chunks become garbage, part of it in blob files
    // with live chunks, which only the reclaimer's garbage collection frees.
    abandoned.abort();
    for node in &nodes {
        let m = metrics_once(
            &node.api,
            Duration::from_secs(90),
            "the aborted upload's blob space collected",
            |m| {
                m["confab_files_staged_uploads"] == 0.0
                    && m["confab_files_blob_reclaimed_bytes_total"] > 0.0
                    && m["confab_files_blob_garbage_bytes"] == 0.0
            },
        )
        .await;
        // What is left is the live file's chunks.
        let left = m["confab_files_blob_file_bytes"];
        assert!(
            left >= (3 * MIB) as f64 && left < (4 * MIB) as f64,
            "node {}: {left} blob bytes left",
            node.id
        );
    }
    for node in &nodes {
        let download = download_once_there(&alice.on(&node.api), &live_id).await;
        assert_eq!(sha256(&download.body), sha256(&live), "node {}", node.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_added_after_uploads_catches_up_by_snapshot_and_serves_them() {
    let (dir, nodes) = three_nodes_with(&["--snapshot-every", "20"]).await;
    let (alice, _bob, _carol, _team, public, _private) = team_fixture(&nodes[0].api).await;
    let mut uploaded = Vec::new();
    for n in 0..3u64 {
        let bytes = random_bytes(2 * MIB + n as usize * 1000, 100 + n);
        let (status, answer) =
            upload_raw(&alice, &public, &format!("f{n}.bin"), bytes.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        uploaded.push((file_id(&answer, 0), sha256(&bytes)));
    }
    // Enough further entries that the log holding the chunks is purged behind a snapshot.
    for n in 0..40 {
        alice
            .ok(
                "POST",
                "/posts",
                Some(json!({"channel_id": public, "message": format!("filler {n}")})),
            )
            .await;
    }
    // Node 4 starts empty, knowing the founding members but not among them, so it waits to be
    // added; the operator adds it with `confab cluster add`.
    let node_dir = dir.path().join("n4");
    std::fs::create_dir_all(&node_dir).expect("node dir");
    let members = nodes
        .iter()
        .map(|n| format!("{}={}", n.id, n.raft_addr))
        .collect::<Vec<_>>()
        .join(",");
    let mut fourth = Node::start(
        4,
        node_dir,
        &[
            "--initial-members".to_string(),
            members,
            "--snapshot-every".to_string(),
            "20".to_string(),
        ],
    );
    fourth.wait_ready().await;
    let added = tokio::process::Command::new(confab_bin())
        .args(["cluster", "--api", &nodes[1].api, "--token"])
        .arg(alice.token.as_deref().expect("alice's token"))
        .args(["add", "--node-id", "4", "--raft-addr", &fourth.raft_addr])
        .output()
        .await
        .expect("run confab cluster add");
    assert!(
        added.status.success(),
        "confab cluster add: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    eventually(Duration::from_secs(90), "node 4 to become a voter", || {
        let alice = alice.clone();
        async move {
            let status = alice.ok("GET", "/cluster/status", None).await;
            status["members"]
                .as_array()?
                .iter()
                .any(|m| m["id"] == 4 && m["role"] == "voter")
                .then_some(())
        }
    })
    .await;
    let on_fourth = alice.on(&fourth.api);
    for (id, digest) in &uploaded {
        let download = download_once_there(&on_fourth, id).await;
        assert_eq!(&sha256(&download.body), digest);
    }
}
