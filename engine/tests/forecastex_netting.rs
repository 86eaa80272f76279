//! ForecastEx netting: the spec's worked examples verbatim, the pairing of
//! YES/NO conids, and a property test over shuffled, duplicated deliveries.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_engine as engine;

use std::collections::HashSet;

use chrono::{TimeZone, Utc};
use engine::forecastex::{
    economic_fills, venue_executions, venue_legs, Leg, NetPosition, NettingError, Pairing, Right,
    StrikePair, StrikePosition, StrikeSide,
};
use engine::model::{Conid, ExecSide, Execution};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const YES: Conid = Conid(762089343);
const NO: Conid = Conid(762089344);

fn pair() -> StrikePair {
    StrikePair {
        underlying: Conid(733131966),
        expiration: Some("20270104".into()),
        strike: dec!(1),
        strike_label: Some("Democratic".into()),
        yes: YES,
        no: NO,
        payout: dec!(1),
    }
}

fn buy(id: &str, conid: Conid, size: Decimal, price: Decimal) -> Execution {
    Execution {
        execution_id: id.into(),
        order_id: None,
        order_ref: None,
        account: "U1234567".into(),
        conid,
        side: ExecSide::Bought,
        size,
        price,
        commission: Decimal::ZERO,
        net_amount: size * price,
        time: Utc.with_ymd_and_hms(2026, 11, 2, 15, 0, 0).unwrap(),
    }
}

fn apply_all(pos: &mut StrikePosition, execs: &[Execution]) {
    for e in execs {
        pos.apply_execution(&pair(), e).unwrap();
    }
}

/// "consider an account long 100 YES contracts. A new order is submitted to
/// buy 10 NO contracts of the same strike ... Net result: Account contains
/// only the long 90 YES position."
#[test]
fn spec_example_one_long_100_yes_buy_10_no() {
    let held = StrikePosition {
        yes: dec!(100),
        no: dec!(0),
    };
    let legs = venue_legs(held, Right::No, dec!(10));
    assert_eq!(
        legs,
        vec![
            // "IB sends an execution report of Bot 10 NO ("side": "B")"
            Leg {
                right: Right::No,
                side: ExecSide::Bought,
                size: dec!(10)
            },
            // "Netting 10 YES ("side": "N")"
            Leg {
                right: Right::Yes,
                side: ExecSide::Netting,
                size: dec!(10)
            },
            // "Netting 10 NO ("side": "N")"
            Leg {
                right: Right::No,
                side: ExecSide::Netting,
                size: dec!(10)
            },
        ]
    );
    let execs = venue_executions(&pair(), held, &buy("b1", NO, dec!(10), dec!(0.40))).unwrap();
    let mut pos = held;
    // After the B alone: "This momentarily creates a long 10 NO position".
    pos.apply_execution(&pair(), &execs[0]).unwrap();
    assert_eq!((pos.yes, pos.no), (dec!(100), dec!(10)));
    assert!(!pos.is_settled());
    // "reduces the long 100 YES position in the account by 10, yielding 90"
    pos.apply_execution(&pair(), &execs[1]).unwrap();
    assert_eq!(pos.yes, dec!(90));
    // "reduces the long 10 NO position by 10 to 0, flattening it"
    pos.apply_execution(&pair(), &execs[2]).unwrap();
    assert_eq!(pos.no, dec!(0));
    assert_eq!(pos.net(), NetPosition::Yes(dec!(90)));
    assert!(pos.is_settled());
}

/// "consider the same account, now long 90 YES. Another order is submitted to
/// buy 130 NO contracts on the same strike ... Net result: Account contains
/// only the long 40 NO position."
#[test]
fn spec_example_two_long_90_yes_buy_130_no() {
    let held = StrikePosition {
        yes: dec!(90),
        no: dec!(0),
    };
    let execs = venue_executions(&pair(), held, &buy("b2", NO, dec!(130), dec!(0.55))).unwrap();
    let seen: Vec<_> = execs.iter().map(|e| (e.side, e.conid, e.size)).collect();
    assert_eq!(
        seen,
        vec![
            (ExecSide::Bought, NO, dec!(130)),
            (ExecSide::Netting, YES, dec!(90)),
            (ExecSide::Netting, NO, dec!(90)),
        ]
    );
    let mut pos = held;
    pos.apply_execution(&pair(), &execs[0]).unwrap();
    assert_eq!(pos.no, dec!(130));
    pos.apply_execution(&pair(), &execs[1]).unwrap();
    assert_eq!(pos.yes, dec!(0));
    pos.apply_execution(&pair(), &execs[2]).unwrap();
    assert_eq!(pos.no, dec!(40));
    assert_eq!(pos.net(), NetPosition::No(dec!(40)));
    assert!(pos.is_settled());
}

#[test]
fn both_examples_in_sequence_from_flat() {
    let mut pos = StrikePosition::default();
    let open = venue_executions(&pair(), pos, &buy("b0", YES, dec!(100), dec!(0.5))).unwrap();
    assert_eq!(open.len(), 1, "an opening buy is a plain B");
    apply_all(&mut pos, &open);
    let one = venue_executions(&pair(), pos, &buy("b1", NO, dec!(10), dec!(0.4))).unwrap();
    apply_all(&mut pos, &one);
    assert_eq!(pos.net(), NetPosition::Yes(dec!(90)));
    let two = venue_executions(&pair(), pos, &buy("b2", NO, dec!(130), dec!(0.55))).unwrap();
    apply_all(&mut pos, &two);
    assert_eq!(
        pos,
        StrikePosition {
            yes: dec!(0),
            no: dec!(40)
        }
    );
}

#[test]
fn netting_prices_realize_the_pair_pnl() {
    // Long 100 YES at 0.50, buy 10 NO at 0.40: selling 10 YES at 0.60 is +1.00.
    let held = StrikePosition {
        yes: dec!(100),
        no: dec!(0),
    };
    let execs = venue_executions(&pair(), held, &buy("b1", NO, dec!(10), dec!(0.40))).unwrap();
    assert_eq!(execs[1].execution_id, "b1.N1");
    assert_eq!(execs[1].price, dec!(0.60));
    assert_eq!(execs[2].execution_id, "b1.N2");
    assert_eq!(execs[2].price, dec!(0.40));
    let mut yes = engine::model::Position::flat(YES, Decimal::ONE);
    yes.apply_fill(dec!(100), dec!(0.50));
    let realized = yes.apply_fill(-execs[1].size, execs[1].price);
    assert_eq!(realized, dec!(1.00));
}

#[test]
fn sells_and_foreign_conids_are_errors() {
    let mut pos = StrikePosition::default();
    let mut sell = buy("s1", YES, dec!(1), dec!(0.5));
    sell.side = ExecSide::Sold;
    assert!(matches!(
        pos.apply_execution(&pair(), &sell),
        Err(NettingError::SellNotAllowed { .. })
    ));
    let other = buy("x", Conid(1), dec!(1), dec!(0.5));
    assert!(matches!(
        pos.apply_execution(&pair(), &other),
        Err(NettingError::UnknownConid { .. })
    ));
    assert!(matches!(
        venue_executions(&pair(), pos, &sell),
        Err(NettingError::NotABuy { .. })
    ));
    let zero = buy("z", YES, dec!(0), dec!(0.5));
    assert!(matches!(
        pos.apply_execution(&pair(), &zero),
        Err(NettingError::BadSize { .. })
    ));
}

/// One side of a strike of market 733131966.
fn side(conid: i64, strike: Decimal, right: Right, expiration: &str) -> StrikeSide {
    StrikeSide {
        conid: Conid(conid),
        underlying_conid: Conid(733131966),
        strike,
        right,
        strike_label: None,
        expiration: Some(expiration.into()),
        payout: None,
    }
}

#[test]
fn pairs_yes_and_no_records_per_strike() {
    let records = [
        StrikeSide {
            strike_label: Some("Democratic".into()),
            payout: Some(dec!(1)),
            ..side(11, dec!(1.0), Right::Yes, "20270104")
        },
        StrikeSide {
            payout: Some(dec!(1)),
            ..side(12, dec!(1), Right::No, "20270104")
        },
        side(21, dec!(2.0), Right::No, "20270104"),
        side(22, dec!(2.0), Right::Yes, "20270104"),
        side(31, dec!(1.0), Right::Yes, "20280104"),
    ];
    let pairing = Pairing::from_records(&records).unwrap();
    assert_eq!(pairing.pairs().len(), 2);
    assert_eq!(pairing.opposite(Conid(11)), Some(Conid(12)));
    assert_eq!(pairing.opposite(Conid(12)), Some(Conid(11)));
    assert_eq!(pairing.opposite(Conid(21)), Some(Conid(22)));
    let (p, right) = pairing.lookup(Conid(21)).unwrap();
    assert_eq!(
        (right, p.yes, p.no, p.strike),
        (Right::No, Conid(22), Conid(21), dec!(2))
    );
    assert_eq!(p.payout, dec!(1), "1 when the records do not say");
    assert_eq!(
        pairing.lookup(Conid(11)).unwrap().0.strike_label.as_deref(),
        Some("Democratic")
    );
    // Same strike value, other measured period: its own strike, unpaired here.
    assert_eq!(pairing.unpaired, vec![Conid(31)]);
    assert_eq!(pairing.opposite(Conid(31)), None);
}

#[test]
fn two_conids_for_one_side_is_an_error() {
    let records = [
        side(11, dec!(1.0), Right::Yes, "20270104"),
        side(13, dec!(1.0), Right::Yes, "20270104"),
    ];
    let err = Pairing::from_records(&records).unwrap_err();
    assert!(matches!(err, NettingError::DuplicateSide { .. }));
    assert!(err.to_string().contains("11") && err.to_string().contains("13"));
}

/// A run of buys at the venue and everything it reported, in venue order.
fn venue_run(buys: &[(bool, u32)]) -> (StrikePosition, Vec<Execution>) {
    let mut venue = StrikePosition::default();
    let mut reports = Vec::new();
    for (i, &(yes, qty)) in buys.iter().enumerate() {
        let conid = if yes { YES } else { NO };
        let fill = buy(&format!("e{i}"), conid, Decimal::from(qty), dec!(0.37));
        let execs = venue_executions(&pair(), venue, &fill).unwrap();
        apply_all(&mut venue, &execs);
        assert!(venue.is_settled(), "the venue nets every buy completely");
        reports.extend(execs);
    }
    (venue, reports)
}

fn buys() -> impl Strategy<Value = Vec<(bool, u32)>> {
    prop::collection::vec((any::<bool>(), 1u32..500), 1..25)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any interleaving of buys, every report delivered in any order with
    /// any of them repeated: the deduplicated position equals the venue's,
    /// and never holds YES and NO at once.
    #[test]
    fn shuffled_duplicated_delivery_matches_the_venue(
        (buys, delivery) in buys().prop_flat_map(|buys| {
            let n = venue_run(&buys).1.len();
            let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            let dups = prop::collection::vec((0..n, 0..n + 1), 0..n + 1);
            (Just(buys), (order, dups))
        })
    ) {
        let (venue, reports) = venue_run(&buys);
        let (order, dups) = delivery;
        let mut stream: Vec<&Execution> = order.iter().map(|&i| &reports[i]).collect();
        for (which, at) in dups {
            let at = at.min(stream.len());
            stream.insert(at, &reports[which]);
        }
        let mut seen = HashSet::new();
        let mut pos = StrikePosition::default();
        for e in stream {
            if seen.insert(e.execution_id.clone()) {
                pos.apply_execution(&pair(), e).unwrap();
            }
        }
        prop_assert_eq!(pos, venue);
        prop_assert!(pos.is_settled());
        let expected: i64 = buys.iter().map(|&(y, q)| if y { q as i64 } else { -(q as i64) }).sum();
        prop_assert_eq!(pos.net_yes(), Decimal::from(expected));
    }
}

/// As a trade history reads the spec's examples: buying 10 NO against 100
/// YES closes 10 YES at payout - price; buying 130 NO against 90 YES closes
/// the 90 YES and opens 40 NO at the price. Commission stays whole.
#[test]
fn economic_fills_of_the_spec_examples() {
    let mut fill = buy("b1", NO, dec!(10), dec!(0.40));
    fill.commission = dec!(0.25);
    let held = StrikePosition {
        yes: dec!(100),
        no: dec!(0),
    };
    let one = economic_fills(&venue_executions(&pair(), held, &fill).unwrap());
    let seen: Vec<_> = one
        .iter()
        .map(|e| (e.side, e.conid, e.size, e.price, e.commission))
        .collect();
    assert_eq!(
        seen,
        vec![(ExecSide::Netting, YES, dec!(10), dec!(0.60), dec!(0.25))]
    );
    let mut fill = buy("b2", NO, dec!(130), dec!(0.55));
    fill.commission = dec!(1);
    let held = StrikePosition {
        yes: dec!(90),
        no: dec!(0),
    };
    let two = economic_fills(&venue_executions(&pair(), held, &fill).unwrap());
    let seen: Vec<_> = two
        .iter()
        .map(|e| (e.side, e.conid, e.size, e.price, e.commission))
        .collect();
    assert_eq!(
        seen,
        vec![
            (ExecSide::Netting, YES, dec!(90), dec!(0.45), dec!(0)),
            (ExecSide::Bought, NO, dec!(40), dec!(0.55), dec!(1)),
        ]
    );
    // An opening buy, or anything else, is left alone.
    let open = [buy("b0", YES, dec!(5), dec!(0.5))];
    assert_eq!(economic_fills(&open), open.to_vec());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the buys and prices: reading each buy's reports through
    /// `economic_fills` leaves the same positions, the same cash and the
    /// same commission as the venue's reports themselves.
    #[test]
    fn economic_fills_keep_positions_cash_and_commission(
        buys in prop::collection::vec((any::<bool>(), 1u32..500, 1u32..100, 0u32..300), 1..20)
    ) {
        let mut venue = StrikePosition::default();
        let (mut raw, mut read) = ((dec!(0), dec!(0), dec!(0), dec!(0)), (dec!(0), dec!(0), dec!(0), dec!(0)));
        // (yes, no, cash, commission) of a stream of reports.
        fn book(acc: &mut (Decimal, Decimal, Decimal, Decimal), e: &Execution) {
            let signed = e.side.signed(e.size);
            if e.conid == YES { acc.0 += signed } else { acc.1 += signed }
            acc.2 -= signed * e.price;
            acc.3 += e.commission;
        }
        for (i, (yes, qty, cents, comm)) in buys.into_iter().enumerate() {
            let conid = if yes { YES } else { NO };
            let mut fill = buy(&format!("e{i}"), conid, Decimal::from(qty), Decimal::new(cents.into(), 2));
            fill.commission = Decimal::new(comm.into(), 2);
            let reports = venue_executions(&pair(), venue, &fill).unwrap();
            apply_all(&mut venue, &reports);
            for e in &reports {
                book(&mut raw, e);
            }
            for e in &economic_fills(&reports) {
                prop_assert!(e.size > Decimal::ZERO);
                book(&mut read, e);
            }
        }
        prop_assert_eq!(raw, read);
        prop_assert_eq!((raw.0, raw.1), (venue.yes, venue.no));
    }
}
