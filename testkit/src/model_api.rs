//! Stand-ins for the model APIs the agent templates call, so Claude Code
//! and Codex can run a whole turn inside a bottle against the project's
//! own upstream: Anthropic's Messages API (`POST /v1/messages`, streamed or
//! not) and OpenAI's Responses API (`POST /v1/responses`, streamed). Each
//! answers with [`REPLY`]. Every request to them is logged to stdout as one
//! JSON line (`{"model_api": …, "headers": …}`), so a test reads what
//! reached the upstream — the real credential included — from the
//! container's log, not from a response the sidecar would mask.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};

/// What the fake model says.
pub const REPLY: &str = "Hello from the bottlebar test model.";

/// Whether `path` is one of the fake model APIs.
pub fn handles(path: &str) -> bool {
    matches!(path, "/v1/messages" | "/v1/responses")
}

/// Answers a request to a fake model API, after logging it.
pub async fn respond(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned().into(),
            )
        })
        .collect();
    let body = super::server::body_bytes(req).await;
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    println!(
        "{}",
        json!({ "model_api": path, "headers": headers, "model": request["model"], "stream": request["stream"] })
    );
    let model = request["model"]
        .as_str()
        .unwrap_or("test-model")
        .to_string();
    let stream = request["stream"].as_bool().unwrap_or(false);
    match path.as_str() {
        "/v1/messages" if stream => sse(anthropic_events(&model)),
        "/v1/messages" => json_reply(anthropic_message(&model)),
        _ => sse(openai_events(&model)),
    }
}

fn json_reply(v: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

/// Server-sent events, `(event, data)` each.
fn sse(events: Vec<(&'static str, Value)>) -> Response<Full<Bytes>> {
    let text: String = events
        .into_iter()
        .map(|(event, data)| format!("event: {event}\ndata: {data}\n\n"))
        .collect();
    let mut r = Response::new(Full::new(Bytes::from(text)));
    r.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    r.headers_mut()
        .insert("cache-control", "no-cache".parse().unwrap());
    r
}

fn anthropic_message(model: &str) -> Value {
    json!({
        "id": "msg_bottlebar_test", "type": "message", "role": "assistant", "model": model,
        "content": [{ "type": "text", "text": REPLY }],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": { "input_tokens": 12, "output_tokens": 9 },
    })
}

fn anthropic_events(model: &str) -> Vec<(&'static str, Value)> {
    let mut start = anthropic_message(model);
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["usage"]["output_tokens"] = json!(1);
    vec![
        (
            "message_start",
            json!({ "type": "message_start", "message": start }),
        ),
        (
            "content_block_start",
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
        ),
        (
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": REPLY } }),
        ),
        (
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": 0 }),
        ),
        (
            "message_delta",
            json!({ "type": "message_delta", "delta": { "stop_reason": "end_turn", "stop_sequence": null }, "usage": { "output_tokens": 9 } }),
        ),
        ("message_stop", json!({ "type": "message_stop" })),
    ]
}

fn openai_events(model: &str) -> Vec<(&'static str, Value)> {
    let item = json!({
        "type": "message", "id": "msg_bottlebar_test", "role": "assistant", "status": "completed",
        "content": [{ "type": "output_text", "text": REPLY, "annotations": [] }],
    });
    let response = |status: &str, output: Value| {
        json!({
            "id": "resp_bottlebar_test", "object": "response", "model": model, "status": status,
            "output": output,
            "usage": { "input_tokens": 12, "input_tokens_details": { "cached_tokens": 0 },
                       "output_tokens": 9, "output_tokens_details": { "reasoning_tokens": 0 },
                       "total_tokens": 21 },
        })
    };
    vec![
        (
            "response.created",
            json!({ "type": "response.created", "response": response("in_progress", json!([])) }),
        ),
        (
            "response.output_item.added",
            json!({ "type": "response.output_item.added", "output_index": 0, "item": item }),
        ),
        (
            "response.output_text.delta",
            json!({ "type": "response.output_text.delta", "output_index": 0, "content_index": 0, "item_id": "msg_bottlebar_test", "delta": REPLY }),
        ),
        (
            "response.output_item.done",
            json!({ "type": "response.output_item.done", "output_index": 0, "item": item }),
        ),
        (
            "response.completed",
            json!({ "type": "response.completed", "response": response("completed", json!([item])) }),
        ),
    ]
}
