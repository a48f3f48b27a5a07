use super::*;
use serde_json::json;

fn tap_all(content_type: &str, chunks: &[&str]) -> Usage {
    let mut tap = UsageTap::for_content_type(content_type);
    for chunk in chunks {
        tap.observe(&Bytes::copy_from_slice(chunk.as_bytes()));
    }
    tap.usage()
}

#[test]
fn openai_chat_usage_with_cached_tokens() {
    let answer = json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 4}}});
    let usage = Usage::of(&answer);
    assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens), (Some(12), Some(5), Some(4)));
    assert_eq!(usage.generation_tps, None);
}

#[test]
fn llama_cpp_timings_give_speeds_and_fill_missing_counts() {
    let answer = json!({"usage": {"prompt_tokens": 9, "completion_tokens": 3},
        "timings": {"prompt_n": 2, "cache_n": 7, "prompt_per_second": 250.5, "predicted_n": 3, "predicted_per_second": 41.0}});
    let usage = Usage::of(&answer);
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (Some(9), Some(3)), "usage wins over timings");
    assert_eq!((usage.cached_tokens, usage.prompt_tps, usage.generation_tps), (Some(7), Some(250.5), Some(41.0)));
    let native = Usage::of(&json!({"content": "x", "timings": {"prompt_n": 4, "predicted_n": 8}}));
    assert_eq!((native.prompt_tokens, native.completion_tokens), (Some(4), Some(8)));
}

#[test]
fn responses_and_anthropic_shapes() {
    let responses = Usage::of(&json!({"type": "response.completed", "response": {"usage":
        {"input_tokens": 10, "output_tokens": 2, "input_tokens_details": {"cached_tokens": 1}}}}));
    assert_eq!(
        (responses.prompt_tokens, responses.completion_tokens, responses.cached_tokens),
        (Some(10), Some(2), Some(1))
    );
    let anthropic = Usage::of(&json!({"usage": {"input_tokens": 6, "output_tokens": 9, "cache_read_input_tokens": 3}}));
    assert_eq!(
        (anthropic.prompt_tokens, anthropic.completion_tokens, anthropic.cached_tokens),
        (Some(6), Some(9), Some(3))
    );
}

#[test]
fn an_answer_without_usage_reports_nothing_not_zero() {
    assert_eq!(Usage::of(&json!({"data": [{"embedding": [0.1]}]})), Usage::default());
    assert_eq!(tap_all("application/json", &["{\"choices\":[]}"]), Usage::default());
    assert_eq!(tap_all("text/plain", &["usage"]), Usage::default());
    assert_eq!(tap_all("application/json", &["not json"]), Usage::default());
}

#[test]
fn a_json_answer_in_pieces_is_read_whole() {
    let usage = tap_all(
        "application/json; charset=utf-8",
        &["{\"usage\": {\"prompt_t", "okens\": 3, \"completion_tokens\": 1}}"],
    );
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (Some(3), Some(1)));
}

#[test]
fn a_stream_keeps_only_the_lines_with_usage_even_split_across_chunks() {
    let chunks = [
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
        "data: {\"choices\":[],\"usa",
        "ge\":{\"prompt_tokens\":7,\"completion_tokens\":2},\"timings\":{\"predicted_per_second\":12.5}}\r\n\r\n",
        "data: [DONE]\n\n",
    ];
    let mut tap = UsageTap::for_content_type("text/event-stream");
    assert!(tap.is_stream());
    for chunk in chunks {
        tap.observe(&Bytes::from_static(chunk.as_bytes()));
    }
    let TapKind::Stream { lines, .. } = &tap.kind else { panic!("a stream tap") };
    assert_eq!(lines.iter().filter(|b| **b == b'\n').count(), 1, "only the usage line is kept");
    let usage = tap.usage();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.generation_tps), (Some(7), Some(2), Some(12.5)));
}

#[test]
fn anthropic_stream_takes_input_from_the_start_and_output_from_the_last_delta() {
    let usage = tap_all(
        "text/event-stream",
        &[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":11,\"output_tokens\":1}}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n",
        ],
    );
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (Some(11), Some(15)));
}

#[test]
fn a_last_line_without_newline_is_read_too() {
    let usage = tap_all("text/event-stream", &["data: {\"usage\":{\"prompt_tokens\":1}}"]);
    assert_eq!(usage.prompt_tokens, Some(1));
}

#[test]
fn oversized_json_is_dropped_not_kept() {
    let mut tap = UsageTap::for_content_type("application/json");
    let big = Bytes::from(vec![b' '; MAX_JSON_BYTES + 1]);
    tap.observe(&big);
    tap.observe(&Bytes::from_static(b"{\"usage\":{\"prompt_tokens\":1}}"));
    assert_eq!(tap.usage(), Usage::default());
}

#[test]
fn only_the_top_level_members_are_read_and_the_rest_is_skipped() {
    // A member named usage inside the generated text or the choices is not the answer's usage.
    let answer = r#"{"id":"x","choices":[{"message":{"content":"say \"usage\": {\"prompt_tokens\": 99}",
        "usage":{"prompt_tokens":98}}}],"usage":{"prompt_tokens":3,"completion_tokens":2},"timings":{"predicted_per_second":12.5}}"#;
    let usage = tap_all("application/json", &[answer]);
    assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.generation_tps), (Some(3), Some(2), Some(12.5)));
    let responses = r#"{"type":"response.completed","response":{"output":[{"text":"hi"}],"usage":{"input_tokens":4,"output_tokens":1}}}"#;
    assert_eq!(tap_all("application/json", &[responses]).prompt_tokens, Some(4));
    let anthropic = r#"{"type":"message_start","message":{"usage":{"input_tokens":7}}}"#;
    assert_eq!(tap_all("application/json", &[anthropic]).prompt_tokens, Some(7));
}

#[test]
fn members_of_another_type_read_as_absent() {
    assert_eq!(tap_all("application/json", &["[1, 2]"]), Usage::default(), "not an object");
    assert_eq!(tap_all("application/json", &[r#"{"usage": "many", "response": 3}"#]), Usage::default());
    let odd = tap_all(
        "application/json",
        &[r#"{"usage": {"prompt_tokens": -1, "completion_tokens": 2.5}, "timings": null}"#],
    );
    assert_eq!((odd.prompt_tokens, odd.completion_tokens), (None, None));
    let stream =
        tap_all("text/event-stream", &["data: {\"usage\": [1]}\n\ndata: {\"usage\": {\"prompt_tokens\": 5}}\n\n"]);
    assert_eq!(stream.prompt_tokens, Some(5), "a malformed event does not hide a later one");
}
