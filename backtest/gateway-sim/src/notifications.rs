//! Server prompts by `ntf` and their answer, `POST /iserver/notification`
//! (the spec's "Respond to a Server Prompt"), and the `ntf` / `blt`
//! messages the admin API and the reset schedule send.
//!
//! A batch holding an order whose quantity exceeds
//! [`crate::GatewayConfig::ntf_prompt_above`] is acknowledged as usual
//! (after any `/iserver/reply` precautions), booked `PreSubmitted` and
//! *held*: not handed to the exchange. Every websocket gets
//!
//! ```json
//! {"topic": "ntf", "args": {"id": "o10082", "title": "...", "text": "...",
//!  "orderId": 1700000000000000, "reqId": "1", "options": ["Yes", "No"]}}
//! ```
//!
//! and `POST /iserver/notification` with `{"orderId", "reqId", "text"}`
//! answers it: `Yes` releases the batch to the exchange (staged behind a bar
//! in progress like any new order), `No` cancels it (`sor` updates
//! `Cancelled`). The answer is a JSON string with the status text.
//!
//! Assumptions (the spec's `ntf` example shows only `id`, `text`, `title`
//! and `url`; its answer needs `orderId`, `reqId` and an option; it shows
//! no status text and no error):
//! * The prompt's args are those of [`cpapi::messages::ServerPrompt`];
//!   `orderId` a JSON number, `reqId` a string unique in the run, `id` the
//!   message id [`NTF_PROMPT_ID`] (`o10082`; which id the real gateway
//!   uses for such a prompt is not documented).
//! * One prompt per batch: it names the first order above the threshold,
//!   and its answer releases or cancels the whole batch (a bracket's legs
//!   travel together).
//! * An answer whose `orderId`/`reqId` match no unanswered prompt, or whose
//!   `text` is not one of the options (compared exactly), is
//!   `400 {"error": ...}` and changes nothing; a body that is not a
//!   [`cpapi::messages::NotificationAnswer`] is 400 too.
//! * Status texts: `"Order <id> transmitted"` and `"Order <id> cancelled"`.
//! * An unanswered prompt holds its orders until answered, cancelled (they
//!   cancel like staged ones) or forever; it does not block other orders
//!   (unlike `/iserver/reply` questions). A websocket that connects while
//!   prompts are unanswered is sent them after its greeting, so a client
//!   that reconnects does not lose a prompt.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use cpapi::messages::NotificationAnswer;
use engine::model::{OrderRequest, OrderStatus};

use super::desk::Held;
use super::order_json::order_json;
use super::state::{Push, Shared, State as GwState};
use super::wire::{bad_request, dstr, ok};

/// The message id of the simulator's quantity prompt (the `id` of its
/// `ntf`), for reply policies that list the ids they confirm.
pub const NTF_PROMPT_ID: &str = "o10082";

/// The answers a quantity prompt offers.
const OPTIONS: [&str; 2] = ["Yes", "No"];

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/iserver/notification", post(answer))
}

/// The order of `batch` that needs a server prompt, if any: the first
/// whose quantity exceeds the configured threshold.
pub(crate) fn prompt_trigger(
    sh: &Shared,
    batch: &[(OrderRequest, Option<String>)],
) -> Option<OrderRequest> {
    let max = sh.cfg.ntf_prompt_above?;
    batch
        .iter()
        .find(|(r, _)| r.quantity > max)
        .map(|(r, _)| r.clone())
}

/// Hold the booked `reqs` behind a prompt about `trigger` and send the
/// prompt to every websocket.
pub(crate) fn hold(st: &mut GwState, sh: &Shared, trigger: &OrderRequest, reqs: Vec<OrderRequest>) {
    st.desk.ntf_seq += 1;
    let req_id = st.desk.ntf_seq.to_string();
    let max = sh.cfg.ntf_prompt_above.unwrap_or(Decimal::ZERO);
    let what = match sh.instrument(trigger.conid) {
        Some(i) => format!(
            "{} {} {} {}",
            cpapi::spelling::ticket_side(trigger.side),
            dstr(trigger.quantity),
            i.symbol,
            i.listing_detail()
        ),
        None => format!("order {}", trigger.id.0),
    };
    let order_id = trigger.id.0;
    let args = json!({
        "id": NTF_PROMPT_ID,
        "title": "Order confirmation",
        "text": format!(
            "The following order \"{what}\" exceeds the quantity of {} that needs confirmation.\nDo you want to transmit it?",
            dstr(max)
        ),
        "orderId": order_id,
        "reqId": req_id,
        "options": OPTIONS,
    });
    sh.push(Push::Ntf(args.clone()));
    st.desk.held.push(Held {
        order_id,
        req_id,
        args,
        options: OPTIONS.map(str::to_owned).to_vec(),
        batch: reqs,
    });
}

/// The `ntf` messages of every unanswered prompt, for a websocket that
/// has just connected.
pub(crate) fn unanswered(st: &GwState) -> Vec<Value> {
    st.desk
        .held
        .iter()
        .map(|h| ntf_message(h.args.clone()))
        .collect()
}

/// `{"topic": "ntf", "args": args}`.
pub(crate) fn ntf_message(args: Value) -> Value {
    json!({ "topic": "ntf", "args": args })
}

/// `{"topic": "blt", "args": args}` (the spec's Bulletins shape).
pub(crate) fn blt_message(args: Value) -> Value {
    json!({ "topic": "blt", "args": args })
}

/// `POST /iserver/notification`.
async fn answer(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let a: NotificationAnswer = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return bad_request(format!(
                "body must be {{\"orderId\": int, \"reqId\": string, \"text\": string}}: {e}"
            ))
        }
    };
    let mut guard = sh.lock();
    let st = &mut *guard;
    sh.pump(st);
    let found =
        st.desk.held.iter().position(|h| {
            i64::try_from(h.order_id).ok() == Some(a.order_id) && h.req_id == a.req_id
        });
    let Some(i) = found else {
        return bad_request(format!(
            "no server prompt awaits an answer for orderId {} and reqId {:?}",
            a.order_id, a.req_id
        ));
    };
    if !st.desk.held[i].options.contains(&a.text) {
        return bad_request(format!(
            "{:?} is not one of the options {:?}",
            a.text, st.desk.held[i].options
        ));
    }
    let h = st.desk.held.remove(i);
    let now = st.clock.now();
    let yes = a.text == OPTIONS[0];
    for r in &h.batch {
        if let Some(g) = st.desk.orders.get_mut(&r.id.0) {
            g.status = match (yes, r.parent.is_some()) {
                (false, _) => OrderStatus::Cancelled,
                (true, true) => OrderStatus::PreSubmitted,
                (true, false) => OrderStatus::Submitted,
            };
            g.updated = now;
            sh.push(Push::Order(order_json(g, &sh, true)));
        }
    }
    if yes {
        super::order_handlers::route(st, &sh, h.batch);
        ok(json!(format!("Order {} transmitted", h.order_id)))
    } else {
        ok(json!(format!("Order {} cancelled", h.order_id)))
    }
}
