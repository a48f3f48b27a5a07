use llamactl_api::activity::ActivityOutcome;

use super::*;

fn record(id: i64, at: &str) -> ActivityRecord {
    ActivityRecord {
        id,
        at: at.parse().unwrap(),
        instance: Some("qwen".into()),
        model: Some("qwen2.5-7b".into()),
        path: "/v1/chat/completions".into(),
        status: 200,
        key_id: Some(3),
        key_name: Some("ci".into()),
        client: Some("127.0.0.1".into()),
        duration_ms: 2345.0,
        ttfb_ms: Some(46.4),
        queue_ms: None,
        streamed: true,
        prompt_tokens: Some(12),
        completion_tokens: Some(80),
        cached_tokens: None,
        prompt_tps: None,
        generation_tps: Some(34.56),
        outcome: ActivityOutcome::Completed,
        error: None,
    }
}

#[test]
fn a_record_shows_its_age_time_names_and_measures() {
    let now = "2026-12-01T10:03:07Z".parse().unwrap();
    assert_eq!(
        cells(&record(1, "2026-12-01T10:00:00Z"), now),
        [
            "3m07s ago",
            "2026-12-01 10:00:00Z",
            "qwen",
            "qwen2.5-7b",
            "ci",
            "200",
            "completed",
            "2.3 s",
            "46 ms",
            "12",
            "80",
            "34.6"
        ]
    );
    // What the backend did not report, and a request refused before routing, show `-`.
    let refused = ActivityRecord {
        instance: None,
        model: None,
        key_id: None,
        key_name: None,
        status: 401,
        duration_ms: 0.42,
        ttfb_ms: None,
        prompt_tokens: None,
        completion_tokens: None,
        generation_tps: None,
        outcome: ActivityOutcome::Error,
        ..record(2, "2026-12-01T10:03:07Z")
    };
    let row = cells(&refused, now);
    assert_eq!(row[0], "0s ago");
    assert_eq!(row[2..], ["-", "-", "-", "401", "error", "0.4 ms", "-", "-", "-", "-"]);
}

#[test]
fn durations_are_in_the_unit_that_reads_best() {
    assert_eq!(millis(None), "-");
    assert_eq!(millis(Some(0.04)), "0.0 ms");
    assert_eq!(millis(Some(9.94)), "9.9 ms");
    assert_eq!(millis(Some(10.0)), "10 ms");
    assert_eq!(millis(Some(999.4)), "999 ms");
    assert_eq!(millis(Some(1000.0)), "1.0 s");
    assert_eq!(millis(Some(-3.0)), "0.0 ms");
}

#[test]
fn columns_are_as_wide_as_their_widest_cell_and_lines_have_no_trailing_space() {
    let now = "2026-12-01T10:03:07Z".parse().unwrap();
    let long =
        ActivityRecord { instance: Some("a-very-long-instance-name".into()), ..record(1, "2026-12-01T10:00:00Z") };
    let rows = vec![cells(&long, now)];
    let widths = widths(&rows);
    assert_eq!(widths[2], "a-very-long-instance-name".len());
    // Columns with short cells keep their minimum (or their header's width).
    assert_eq!(widths[0], 9);
    assert_eq!(widths[9], 4);
    assert_eq!(widths[5], "STATUS".len());
    let header: Vec<String> = HEADER.iter().map(|h| (*h).to_owned()).collect();
    let (head, row) = (line(&header, &widths), line(&rows[0], &widths));
    assert!(!head.ends_with(' ') && !row.ends_with(' '));
    // Every column starts where its header does.
    for name in ["INSTANCE", "MODEL", "DURATION", "TOK/S"] {
        let column = HEADER.iter().position(|h| *h == name).unwrap();
        assert_eq!(head.find(name), row.find(rows[0][column].as_str()), "{name}:\n{head}\n{row}");
    }
}

#[test]
fn a_page_shows_oldest_first_and_followed_records_are_filtered_and_new() {
    let page =
        [record(9, "2026-12-01T10:00:09Z"), record(8, "2026-12-01T10:00:08Z"), record(5, "2026-12-01T10:00:05Z")];
    let ids: Vec<i64> = oldest_first(&page).iter().map(|r| r.id).collect();
    assert_eq!(ids, [5, 8, 9]);

    let shown: HashSet<i64> = page.iter().map(|r| r.id).collect();
    let all = ActivityFilter::default();
    assert!(!is_new(&record(8, "2026-12-01T10:00:08Z"), &all, &shown), "on the page already");
    // A request that began before the newest on the page but ended after the page was read.
    assert!(is_new(&record(7, "2026-12-01T10:00:07Z"), &all, &shown));
    let small = ActivityFilter { instance: Some("small".into()), ..ActivityFilter::default() };
    assert!(!is_new(&record(10, "2026-12-01T10:00:10Z"), &small, &shown), "another instance");
}

#[test]
fn the_flags_become_the_query() {
    let flags = ActivityFlags {
        follow: true,
        instance: Some("qwen".into()),
        key: Some("3".into()),
        status: Some(503),
        limit: 20,
    };
    assert_eq!(filter(&flags).query(), "limit=20&instance=qwen&key=3&status=503");
}
