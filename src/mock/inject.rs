//! How an injected fault changes an answer (README "The mock server"; the rules are parsed in
//! `faults.rs`): answered without processing (a status, a vendor error, a broken or foreign body, a
//! dropped connection), or processed and then distorted (wrong totals, another transaction id, another
//! message).

use super::faults::{Actions, BadBody};
use super::{Handled, answer, to_json};
use crate::wire::{self, UploadResults};

/// An upload answer with the totals or the transaction id the fault plan asks to get wrong.
pub(super) fn distort_upload(mut r: UploadResults, actions: &Actions) -> UploadResults {
    let skewed = |count: &mut wire::Count, by: Option<i64>| {
        if let Some(by) = by {
            count.0 = count.0.saturating_add_signed(by);
        }
    };
    skewed(&mut r.runningtotal, actions.running_total_skew);
    skewed(&mut r.expectedtotal, actions.expected_total_skew);
    if let Some(id) = &actions.transactionid {
        r.transactionid = wire::Text(id.clone());
    }
    r
}

/// A processed answer with its `results.message` replaced.
pub(super) fn with_message(body: &[u8], message: &str) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) if value["results"].is_object() => {
            value["results"]["message"] = serde_json::Value::String(message.to_owned());
            to_json(&value)
        }
        _ => body.to_vec(),
    }
}

/// The answer to a call that a fault answers without processing, and a word for the log.
pub(super) fn fault_answer(actions: &Actions) -> (Handled, String) {
    if actions.drop {
        let mut handled = answer(0, Vec::new());
        handled.drop = true;
        return (handled, "drop".into());
    }
    if let Some(status) = actions.status {
        let mut handled = answer(
            status,
            wire::error_body(&format!("Injected fault: HTTP {status}")),
        );
        handled.retry_after = actions.retry_after;
        return (handled, format!("status {status}"));
    }
    if let Some(text) = &actions.error {
        return (
            answer(200, wire::error_body(text)),
            format!("error {text:?}"),
        );
    }
    let (body, content_type, what) = match actions.body.unwrap_or(BadBody::Garbage) {
        BadBody::Html => (
            b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
            "text/html",
            "html body",
        ),
        BadBody::Garbage => (
            b"{\"results\": {\"mess".to_vec(),
            "application/json",
            "garbage body",
        ),
        BadBody::Empty => (Vec::new(), "application/json", "empty body"),
    };
    let mut handled = answer(200, body);
    handled.content_type = content_type;
    (handled, what.into())
}
