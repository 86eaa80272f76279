//! Answers to the precaution prompts of `/iserver/reply/{id}`: only message
//! ids listed in the configuration are confirmed; everything else is
//! declined and reported.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use cpapi::messages::ServerPrompt;

/// A precaution prompt from place/modify or a reply: `{id, message[],
/// messageIds[]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Reply id: answered at `/iserver/reply/{id}`.
    pub id: String,
    /// The question texts, one per precaution.
    pub messages: Vec<String>,
    /// The precautions' ids (`o163`, `o354`, ...), what the policy decides
    /// on; empty when the gateway sent none.
    pub message_ids: Vec<String>,
}

/// What to answer to a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyDecision {
    /// Answer `confirmed: true`: every message id is allowed.
    Confirm,
    /// Declined; the ids that were not allowed, for the report.
    Decline {
        /// Message ids not in the policy, or `(no message id)`.
        unexpected: Vec<String>,
    },
}

/// Which precaution messages may be confirmed automatically (for example
/// `o163` price far from market, `o354` no market data, `o10331` stop
/// order). A prompt is confirmed only if every one of its message ids is
/// allowed; a prompt without ids is declined, since we cannot tell what it
/// asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplyPolicy {
    /// Message ids confirmed without asking (empty by default: every
    /// prompt is declined).
    pub auto_confirm: BTreeSet<String>,
}

impl ReplyPolicy {
    /// Confirm when the prompt has message ids and all are in
    /// `auto_confirm`; otherwise decline, logging a warning.
    pub fn decide(&self, prompt: &Prompt) -> ReplyDecision {
        let unexpected: Vec<String> = prompt
            .message_ids
            .iter()
            .filter(|id| !self.auto_confirm.contains(*id))
            .cloned()
            .collect();
        if prompt.message_ids.is_empty() || !unexpected.is_empty() {
            let unexpected = if unexpected.is_empty() {
                vec!["(no message id)".to_owned()]
            } else {
                unexpected
            };
            tracing::warn!(prompt = %prompt.id, ?unexpected, messages = ?prompt.messages,
                "order prompt declined by the reply policy");
            ReplyDecision::Decline { unexpected }
        } else {
            ReplyDecision::Confirm
        }
    }
}

impl ReplyPolicy {
    /// The answer to a server prompt delivered by `ntf` (see
    /// [`cpapi::messages::ServerPrompt`]): its yes option when its id is
    /// among [`ReplyPolicy::auto_confirm`], else its no option (declined,
    /// logged at WARN); `None` when it offers no option that says no, so
    /// it is left unanswered (logged at ERROR: the order it holds waits).
    pub fn answer_notification<'p>(&self, prompt: &'p ServerPrompt) -> Option<&'p str> {
        if self.auto_confirm.contains(&prompt.id) {
            tracing::info!(prompt = %prompt.id, order = %prompt.order_id, answer = prompt.yes(),
                "server prompt confirmed by the reply policy");
            return Some(prompt.yes());
        }
        match prompt.no() {
            Some(no) => {
                tracing::warn!(prompt = %prompt.id, order = %prompt.order_id, title = %prompt.title,
                    text = %prompt.text, answer = no, "server prompt declined by the reply policy \
                    (list its id with --confirm to accept it)");
                Some(no)
            }
            None => {
                tracing::error!(prompt = %prompt.id, order = %prompt.order_id, title = %prompt.title,
                    options = ?prompt.options, "server prompt neither allowed nor declinable: \
                    left unanswered, the order waits");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_policy_confirms_only_listed_ids() {
        let policy = ReplyPolicy {
            auto_confirm: ["o163".to_owned(), "o354".to_owned()].into(),
        };
        let p = |ids: &[&str]| Prompt {
            id: "x".into(),
            messages: vec!["msg".into()],
            message_ids: ids.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(policy.decide(&p(&["o163"])), ReplyDecision::Confirm);
        assert_eq!(policy.decide(&p(&["o163", "o354"])), ReplyDecision::Confirm);
        assert_eq!(
            policy.decide(&p(&["o163", "o10331"])),
            ReplyDecision::Decline {
                unexpected: vec!["o10331".into()]
            }
        );
        assert!(matches!(
            policy.decide(&p(&[])),
            ReplyDecision::Decline { .. }
        ));
    }
}

#[cfg(test)]
mod notification_tests {
    use super::*;

    fn prompt(id: &str, options: &[&str]) -> ServerPrompt {
        ServerPrompt {
            id: id.into(),
            title: "t".into(),
            text: "x".into(),
            order_id: "5".into(),
            req_id: "9".into(),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn listed_prompts_are_confirmed_the_rest_declined_or_left() {
        let policy = ReplyPolicy {
            auto_confirm: ["o10082".to_owned()].into(),
        };
        assert_eq!(
            policy.answer_notification(&prompt("o10082", &["No", "Yes"])),
            Some("Yes")
        );
        assert_eq!(
            policy.answer_notification(&prompt("o99", &["Yes", "No"])),
            Some("No")
        );
        assert_eq!(
            policy.answer_notification(&prompt("o99", &["Transmit"])),
            None
        );
    }
}
