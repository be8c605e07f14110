//! The load tool end to end at a small size: real `confab-load` processes start real `confab`
//! clusters (and the bare broadcaster) on loopback, and the JSON reports they write must
//! account for every delivery and request.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn run_tool(dir: &Path, args: &[&str]) -> Value {
    let json = dir.join("report.json");
    let plot = dir.join("plot.svg");
    let output = Command::new(env!("CARGO_BIN_EXE_confab-load"))
        .args(args)
        .args([
            "--data-dir",
            &dir.join("data").display().to_string(),
            "--fresh",
        ])
        .args(["--json", &json.display().to_string()])
        .args(["--plot", &plot.display().to_string()])
        .output()
        .expect("run confab-load");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "confab-load {args:?} failed:\n{stderr}\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let svg = std::fs::read_to_string(&plot).expect("plot written");
    assert!(svg.contains("<svg"), "the plot is an SVG");
    serde_json::from_slice(&std::fs::read(&json).expect("report written")).expect("report is JSON")
}

fn counter(report: &Value, name: &str) -> f64 {
    report["counters"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("counter {name} in {}", report["counters"]))
}

#[test]
fn fanout_and_baseline_account_for_every_delivery() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = run_tool(
        dir.path(),
        &[
            "fanout",
            "--nodes",
            "3",
            "--base-port",
            "21065",
            "--users",
            "300",
            "--channel-size",
            "60",
            "--rate",
            "10",
            "--seconds",
            "2",
            "--warmup",
            "0.5",
            "--compare-baseline",
        ],
    );
    for r in [&report, &report["baseline"]] {
        assert_eq!(counter(r, "connections"), 300.0, "{}", r["mode"]);
        let expected = counter(r, "expected_deliveries");
        assert_eq!(
            expected,
            counter(r, "posts_ok") * 60.0,
            "every member of the channel"
        );
        assert!(expected >= 1000.0);
        assert_eq!(counter(r, "deliveries"), expected, "{}", r["mode"]);
        assert_eq!(counter(r, "missing"), 0.0);
        assert_eq!(counter(r, "duplicated"), 0.0);
        assert_eq!(counter(r, "unexpected"), 0.0);
        assert_eq!(
            r["latencies"]["post_to_receive"]["count"].as_f64(),
            Some(expected),
            "one latency sample per delivery"
        );
        assert_eq!(
            r["servers"].as_array().map(Vec::len),
            Some(if r["mode"] == "fanout" { 3 } else { 1 })
        );
    }
    assert_eq!(report["mode"], "fanout");
    assert_eq!(report["baseline"]["mode"], "baseline");
    assert!(report["ratio_to_baseline"]
        .as_f64()
        .is_some_and(|r| r > 0.0));
}

#[test]
fn writes_commit_posts_without_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = run_tool(
        dir.path(),
        &[
            "writes",
            "--nodes",
            "3",
            "--base-port",
            "22065",
            "--writers",
            "1,8",
            "--rate",
            "50",
            "--seconds",
            "1",
            "--users",
            "40",
            "--channel-size",
            "10",
        ],
    );
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3, "two writer counts and the open loop");
    for step in steps {
        assert!(step["counters"]["posts_ok"].as_f64().unwrap_or(0.0) > 0.0);
        assert_eq!(step["counters"]["errors"].as_f64(), Some(0.0));
        assert_eq!(
            step["latencies"]["post_request"]["count"].as_f64(),
            step["counters"]["posts_ok"].as_f64()
        );
    }
    assert!(counter(&report, "max_posts_per_s") > 0.0);
}

#[test]
fn mix_runs_the_loadtest_ng_actions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = run_tool(
        dir.path(),
        &[
            "mix",
            "--nodes",
            "3",
            "--base-port",
            "23065",
            "--users",
            "40",
            "--channel-size",
            "10",
            "--channels-per-user",
            "2",
            "--idle-min-ms",
            "20",
            "--idle-max-ms",
            "120",
            "--step-seconds",
            "6",
        ],
    );
    assert!(counter(&report, "requests:switch_channel") > 0.0);
    assert!(counter(&report, "requests:create_post") > 0.0);
    let errors: f64 = report["counters"]
        .as_object()
        .expect("counters")
        .iter()
        .filter(|(k, _)| k.starts_with("errors:"))
        .map(|(_, v)| v.as_f64().unwrap_or(0.0))
        .sum();
    assert_eq!(
        errors, 0.0,
        "no 5xx or unanswered request: {}",
        report["counters"]
    );
    assert_eq!(counter(&report, "supported_users"), 40.0);
    assert_eq!(report["steps"][0]["passed"], true);
}
