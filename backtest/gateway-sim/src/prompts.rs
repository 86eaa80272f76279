//! Order precaution prompts: which questions an order raises, and their
//! texts (from the spec's "Suppressible MessageIds" table and its o163
//! example).

use std::collections::HashSet;

use rust_decimal::Decimal;

use engine::model::{OrderRequest, OrderType};

use super::config::{Instrument, PromptRule};
use super::wire::dstr;

/// One question: its message id and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prompt {
    pub message_id: &'static str,
    pub text: String,
}

fn label(req: &OrderRequest, inst: &Instrument) -> String {
    format!(
        "{} {} {} {}",
        cpapi::spelling::ticket_side(req.side),
        dstr(req.quantity),
        inst.symbol,
        inst.listing_detail()
    )
}

/// The questions `req` raises, in rule order, skipping suppressed ids and
/// ids already in `asked` (a batch asks each question once).
pub(crate) fn prompts_for(
    rules: &[PromptRule],
    suppressed: &HashSet<String>,
    asked: &mut HashSet<&'static str>,
    req: &OrderRequest,
    inst: &Instrument,
    last: Option<Decimal>,
) -> Vec<Prompt> {
    let mut out = Vec::new();
    for rule in rules {
        let id = rule.message_id();
        if suppressed.contains(id) || asked.contains(id) {
            continue;
        }
        let text = match rule {
            PromptRule::PriceFarFromMarket { percent } => {
                let Some(last) = last.filter(|l| !l.is_zero()) else {
                    continue;
                };
                let Some(price) = req.limit_price.or(req.stop_price) else {
                    continue;
                };
                let off = ((price - last) / last * Decimal::ONE_HUNDRED).abs();
                if off <= *percent {
                    continue;
                }
                format!(
                    "The following order \"{} @ {}\" price exceeds \nthe Percentage constraint of {}%.\nAre you sure you want to submit this order?",
                    label(req, inst),
                    dstr(price),
                    dstr(*percent)
                )
            }
            PromptRule::NoMarketData => {
                if last.is_some() {
                    continue;
                }
                "You are submitting an order without market data. We strongly recommend against this as it may result in erroneous and unexpected trades. Are you sure you want to submit this order?".to_owned()
            }
            PromptRule::StopOrder => {
                if !matches!(
                    req.order_type,
                    OrderType::Stop
                        | OrderType::StopLimit
                        | OrderType::Trail
                        | OrderType::TrailLimit
                ) {
                    continue;
                }
                "You are about to submit a stop order. Please be aware of the various stop order types available and the risks associated with each one.\nAre you sure you want to submit this order?".to_owned()
            }
            PromptRule::SizeLimit { max } => {
                if req.quantity <= *max {
                    continue;
                }
                format!(
                    "The following order \"{}\" size exceeds the Size Limit of {}.\nAre you sure you want to submit this order?",
                    label(req, inst),
                    dstr(*max)
                )
            }
        };
        asked.insert(id);
        out.push(Prompt {
            message_id: id,
            text,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::model::{Conid, OrderId, Side, Tif};
    use rust_decimal_macros::dec;

    fn req(ty: OrderType, limit: Option<Decimal>, stop: Option<Decimal>) -> OrderRequest {
        OrderRequest {
            id: OrderId(1),
            conid: Conid(265598),
            side: Side::Buy,
            order_type: ty,
            quantity: dec!(5),
            limit_price: limit,
            stop_price: stop,
            trail: None,
            tif: Tif::Day,
            outside_rth: false,
            client_order_id: "a".into(),
            parent: None,
            oca_group: None,
        }
    }

    #[test]
    fn rules_fire_and_suppress() {
        let inst = Instrument::sample().remove(0);
        let rules = PromptRule::defaults();
        let none = HashSet::new();
        let far = req(OrderType::Limit, Some(dec!(150)), None);
        let p = prompts_for(
            &rules,
            &none,
            &mut HashSet::new(),
            &far,
            &inst,
            Some(dec!(193)),
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].message_id, "o163");
        assert!(
            p[0].text.contains("\"BUY 5 AAPL NASDAQ.NMS @ 150\""),
            "{}",
            p[0].text
        );
        let near = req(OrderType::Limit, Some(dec!(192)), None);
        assert!(prompts_for(
            &rules,
            &none,
            &mut HashSet::new(),
            &near,
            &inst,
            Some(dec!(193))
        )
        .is_empty());
        let stop = req(OrderType::Stop, None, Some(dec!(192)));
        let p = prompts_for(&rules, &none, &mut HashSet::new(), &stop, &inst, None);
        let ids: Vec<_> = p.iter().map(|p| p.message_id).collect();
        assert_eq!(ids, ["o354", "o10331"]);
        let suppressed: HashSet<String> = ["o354".to_owned(), "o10331".to_owned()].into();
        assert!(
            prompts_for(&rules, &suppressed, &mut HashSet::new(), &stop, &inst, None).is_empty()
        );
    }
}
