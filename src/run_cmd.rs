//! `ibflow run`: strategies live, on a CP Gateway or, by default, on the
//! built-in simulator replaying the bundled sample.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use clap::Args;
use rust_decimal::Decimal;

use cpapi::order_ticket::TicketBuilder;
use engine::forecastex::{Pairing, StrikeSide};
use engine::model::{Conid, Contract};
use engine::portfolio::Portfolio;
use engine::registry::Params;
use engine::risk::RiskConfig;
use engine::strategy::{Scoped, Strategy};
use gateway_sim::{Gateway, GatewayConfig};
use ibkr::broker::IbkrBroker;
use ibkr::executor::LiveExecutor;
use ibkr::live_engine::LiveEngine;
use ibkr::reply::ReplyPolicy;
use ibkr::session;
use ibkr::ws::{self, Subscription, WsConfig};
use ibkr::{ClientConfig, IbkrClient};

use crate::config::ConfigFile;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// CP Gateway base URL, e.g. https://localhost:5000/v1/api. Without it
    /// (and without `[run] gateway` in the config) the built-in simulator
    /// runs in-process on the bundled sample.
    #[arg(long)]
    pub gateway: Option<String>,
    /// Accept the gateway's self-signed certificate (loopback hosts only).
    #[arg(long)]
    pub insecure: bool,
    /// Account to trade; default: the gateway's first account.
    #[arg(long)]
    pub account: Option<String>,
    /// One strategy to run (default sma_cross); replaces the config's
    /// `[[run.strategies]]`.
    #[arg(long)]
    pub strategy: Option<String>,
    /// Strategy parameter, repeatable: --param fast=10.
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    /// Contracts to trade (default with the simulator: the sample's).
    #[arg(long = "conid")]
    pub conids: Vec<i64>,
    /// Bar length built from quotes for on_bar strategies. Default 60.
    #[arg(long)]
    pub bar_seconds: Option<u64>,
    /// Simulator replay speed (replay seconds per second). Default 1.
    #[arg(long)]
    pub speed: Option<f64>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Prompt message ids to confirm automatically (o163, o354, o10331...).
    #[arg(long = "confirm", value_name = "ID")]
    pub confirm: Vec<String>,
    /// Leave working orders in place on exit (default: cancel them).
    #[arg(long)]
    pub keep_orders: bool,
    /// TOML file: `[run]` (venue, contracts, `[[run.strategies]]`), `[risk]`
    /// and `[store]`; flags win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Refuse orders outside each contract's trading hours, fetched from
    /// /trsrv/secdef/schedule. On by default with --gateway; off with the
    /// simulator, whose replayed market does not keep wall-clock hours.
    #[arg(long)]
    pub trading_hours: Option<bool>,
    /// Persist orders and executions in the SQLite store (global `--db`,
    /// `IBFLOW_DB`) and reconcile it with the broker at start.
    #[arg(long)]
    pub store: bool,
    /// Print the final summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: RunArgs, db: Option<&std::path::Path>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(args, db.map(std::path::Path::to_path_buf)))
}

async fn run_async(mut args: RunArgs, db: Option<PathBuf>) -> Result<()> {
    let file = match &args.config {
        Some(p) => ConfigFile::load(p)?,
        None => ConfigFile::default(),
    };
    let mut risk = file.risk;
    let run = file.run;
    // Flags win over [run].
    args.gateway = args.gateway.or(run.gateway);
    args.account = args.account.or(run.account);
    args.insecure |= run.insecure.unwrap_or(false);
    args.store |= run.store.unwrap_or(false);
    args.keep_orders |= run.keep_orders.unwrap_or(false);
    args.trading_hours = args.trading_hours.or(run.trading_hours);
    if args.confirm.is_empty() {
        args.confirm = run.confirm;
    }
    if args.conids.is_empty() {
        args.conids = run.conids;
    }
    let bar_seconds = args.bar_seconds.or(run.bar_seconds).unwrap_or(60).max(1);
    let speed = args.speed.or(run.speed).unwrap_or(1.0);
    let (strategies, names, scoped) = build_strategies(&args, &run.strategies, &mut risk)?;
    // --db / IBFLOW_DB, then [store] db of the config, then the default.
    let db = db
        .or(file.store.db)
        .unwrap_or_else(|| PathBuf::from(crate::cli::DEFAULT_DB));

    // The venue: a gateway, or the simulator in this process.
    let (sim, base_url, default_conids) = match &args.gateway {
        Some(url) => (None, url.clone(), Vec::new()),
        None => {
            let gw = Gateway::start(GatewayConfig {
                speed,
                ..GatewayConfig::default()
            })
            .await
            .map_err(|e| anyhow!("starting the simulator: {e}"))?;
            let url = gw.base_url();
            eprintln!("simulator serving {url} (speed {speed}x)");
            let sample: Vec<Conid> = backtest::data::sample()
                .contracts()
                .iter()
                .map(|c| c.conid)
                .collect();
            (Some(gw), url, sample)
        }
    };
    // The contracts named (flags or [run]) and those the strategies are
    // scoped to; the simulator's sample when nothing is named.
    let mut wanted: BTreeSet<Conid> = args.conids.iter().map(|c| Conid(*c)).collect();
    wanted.extend(scoped);
    let conids: Vec<Conid> = if wanted.is_empty() {
        default_conids
    } else {
        wanted.into_iter().collect()
    };
    if conids.is_empty() {
        return Err(anyhow!("no contracts to trade: give --conid"));
    }

    let client = IbkrClient::new(ClientConfig {
        accept_invalid_certs: args.insecure,
        ..ClientConfig::with_base_url(base_url)
    })?;
    let account = match &args.account {
        Some(a) => a.clone(),
        None => client
            .iserver_accounts()
            .await?
            .accounts
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("the gateway lists no account"))?,
    };
    let (contracts, event_records) = resolve_contracts(&client, &conids).await?;
    let pairing = Pairing::from_records(&event_records)?;
    let (wsh, mut rx) = ws::spawn(client.clone(), WsConfig::default(), 1024);
    wsh.subscribe(Subscription::Orders);
    wsh.subscribe(Subscription::Trades {
        realtime_only: true,
        days: None,
    });
    for c in &contracts {
        wsh.subscribe(Subscription::MarketData {
            conid: c.conid,
            fields: ["31", "84", "86", "85", "88", "87", "7762"]
                .map(str::to_owned)
                .to_vec(),
        });
    }
    // Trade only once the websocket is up, so no update is missed.
    let connect = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(m) = rx.recv().await {
            if matches!(m, ws::WsMessage::Connected { .. }) {
                return true;
            }
        }
        false
    });
    if !connect.await.unwrap_or(false) {
        return Err(anyhow!("the websocket did not connect within 30 s"));
    }

    // Keep the session alive: /tickle every minute, re-init after resets.
    let (session_tx, session_rx) = tokio::sync::mpsc::channel(16);
    let keeper = session::spawn_keeper(
        client.clone(),
        session::SessionConfig::default(),
        session_tx,
    );
    let hours_client = client.clone();
    let contracts_for_hours = contracts.clone();
    let exec = LiveExecutor::new(
        client,
        TicketBuilder {
            account: account.clone(),
            coid_prefix: TicketBuilder::run_prefix(chrono::Utc::now()),
            ext_operator: format!("ibflow-{}", env!("CARGO_PKG_VERSION")),
        },
        ReplyPolicy {
            auto_confirm: args.confirm.iter().cloned().collect(),
        },
    );
    let mut engine = LiveEngine::new(
        strategies,
        Portfolio::new(Decimal::from(100_000)),
        risk,
        IbkrBroker::new(exec, account),
        contracts,
    )
    .with_bars(Duration::from_secs(bar_seconds));
    if !pairing.is_empty() {
        eprintln!(
            "ForecastEx: {} strike(s) known to strategies",
            pairing.pairs().len()
        );
        engine.set_event_pairing(pairing);
    }
    if args.trading_hours.unwrap_or(args.gateway.is_some()) {
        for c in &contracts_for_hours {
            let asset = serde_json::to_value(&c.sec_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "STK".to_owned());
            match hours_client.trading_schedule(&asset, &c.symbol, None).await {
                Ok(s) => match s.first().map(cpapi::messages::TradingSchedule::to_hours) {
                    Some(Ok(h)) => engine.set_trading_hours(c.conid, h),
                    Some(Err(e)) => eprintln!("trading hours of {}: {e}; not enforced", c.conid),
                    None => eprintln!("no trading schedule for {}; not enforced", c.conid),
                },
                Err(e) => eprintln!("trading hours of {}: {e}; not enforced", c.conid),
            }
        }
    }
    if args.store {
        let store = store::Store::open(&db)
            .await
            .with_context(|| format!("opening the store {}", db.display()))?;
        if !event_records.is_empty() {
            // `positions --local` nets the strikes with these.
            store
                .put_event_contracts(&event_records)
                .await
                .context("storing the ForecastEx contracts")?;
        }
        engine = engine.with_journal(Box::new(store));
        let found = engine.reconcile().await?;
        eprintln!(
            "store {}: reconciled with the broker, {} discrepanc{}",
            db.display(),
            found.len(),
            if found.len() == 1 { "y" } else { "ies" }
        );
        for d in &found {
            eprintln!("  {d:?}");
        }
    }
    engine.start().await;
    let stop = async {
        match args.duration {
            Some(s) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(s)) => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    #[cfg(unix)]
    let usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .context("installing the SIGUSR1 kill switch")?;
    eprintln!(
        "running {} live; Ctrl-C stops; kill switch: kill -USR1 {}",
        names.join(", "),
        std::process::id()
    );
    #[cfg(unix)]
    run_loop(&mut engine, rx, session_rx, stop, usr1).await;
    #[cfg(not(unix))]
    run_loop(&mut engine, rx, session_rx, stop).await;
    keeper.abort();
    if !args.keep_orders {
        engine.shutdown().await;
    }
    let stats = engine.stats();
    let pf = engine.dispatcher().portfolio();
    let positions: Vec<_> = pf.positions().filter(|p| !p.is_flat()).cloned().collect();
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "stats": stats,
                "equity": cents(pf.equity()),
                "realized_pnl": cents(pf.realized_pnl()),
                "positions": positions,
                "trading_state": format!("{:?}", engine.trading_state()),
            })
        );
    } else {
        println!(
            "quotes {}  bars {}  order updates {}  executions {}  rejected {}",
            stats.quotes, stats.bars, stats.order_updates, stats.executions, stats.rejected
        );
        println!(
            "equity {}  realized {}",
            cents(pf.equity()),
            cents(pf.realized_pnl())
        );
        for p in &positions {
            println!("position {} {} @ {}", p.conid, p.quantity, p.avg_price);
        }
    }
    wsh.shutdown().await;
    if let Some(gw) = sim {
        gw.shutdown().await;
    }
    Ok(())
}

/// Money as reported: to the cent. Average-cost accounting keeps exact
/// quotients internally (`1/3` of a cost stays a 28-digit decimal); a
/// report shows what the account statement would.
fn cents(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

/// The strategies of the run: `--strategy`/`--param` (one), else the
/// config's `[[run.strategies]]`, else sma_cross. Entries with `conids`
/// see only those contracts' market data; an entry's `risk` becomes
/// `[risk.per_strategy.N]` (N its position). Returns the strategies, their
/// names, and every conid a strategy is scoped to.
type Built = (Vec<Box<dyn Strategy>>, Vec<String>, BTreeSet<Conid>);

fn build_strategies(
    args: &RunArgs,
    entries: &[crate::config::RunStrategy],
    risk: &mut RiskConfig,
) -> Result<Built> {
    let registry = strategies::registry();
    if args.strategy.is_some() || !args.params.is_empty() || entries.is_empty() {
        let name = args.strategy.clone().unwrap_or_else(|| "sma_cross".into());
        let mut params = Params::new();
        for p in &args.params {
            params.set_pair(p)?;
        }
        let s = registry.build(&name, &params)?;
        return Ok((vec![s], vec![name], BTreeSet::new()));
    }
    let mut out: Vec<Box<dyn Strategy>> = Vec::with_capacity(entries.len());
    let mut names = Vec::with_capacity(entries.len());
    let mut scoped = BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        let s = registry
            .build(&e.name, &Params::from_table(e.params.clone()))
            .with_context(|| format!("[[run.strategies]] entry {i} ({})", e.name))?;
        if let Some(limits) = &e.risk {
            if risk.per_strategy.insert(i, limits.clone()).is_some() {
                return Err(anyhow!(
                    "strategy {i} ({}) has risk limits both in [[run.strategies]] and \
                     [risk.per_strategy.{i}]: keep one",
                    e.name
                ));
            }
        }
        if e.conids.is_empty() {
            out.push(s);
        } else {
            let conids: Vec<Conid> = e.conids.iter().map(|c| Conid(*c)).collect();
            scoped.extend(conids.iter().copied());
            out.push(Box::new(Scoped::new(s, conids)));
        }
        names.push(e.name.clone());
    }
    Ok((out, names, scoped))
}

/// What the gateway says the contracts are (`/trsrv/secdef`: security
/// type, exchange, multiplier, tick), so risk checks the real thing (a
/// ForecastEx contract cannot be sold), and the YES/NO pairs of the
/// ForecastEx markets among them (`/trsrv/event/contracts`), for
/// `Context::event_pair`.
async fn resolve_contracts(
    client: &IbkrClient,
    conids: &[Conid],
) -> Result<(Vec<Contract>, Vec<StrikeSide>)> {
    let defs = client
        .trsrv_secdef(conids)
        .await
        .context("GET /trsrv/secdef (contract details)")?;
    let mut contracts = Vec::with_capacity(conids.len());
    for conid in conids {
        let def = defs
            .secdef
            .iter()
            .find(|d| d.conid == *conid)
            .ok_or_else(|| anyhow!("the gateway knows no contract {conid}"))?;
        contracts.push(def.contract());
    }
    let markets: BTreeSet<i64> = defs
        .secdef
        .iter()
        .filter(|d| d.is_event_contract == Some(true))
        .filter_map(|d| d.und_conid)
        .collect();
    let mut records = Vec::new();
    for market in markets {
        let body = client
            .event_contracts(Conid(market), "FORECASTX")
            .await
            .with_context(|| format!("GET /trsrv/event/contracts?market={market}"))?;
        for k in &body.contracts {
            records.push(k.record()?);
        }
    }
    Ok((contracts, records))
}

/// The live loop: websocket messages, a one-second timer that closes bars,
/// and on Unix `SIGUSR1` as the kill switch (halt and cancel every working
/// order; the process keeps running and refuses new orders).
async fn run_loop<S: engine::strategy::Strategy>(
    engine: &mut LiveEngine<S>,
    mut rx: tokio::sync::mpsc::Receiver<ws::WsMessage>,
    mut session_rx: tokio::sync::mpsc::Receiver<engine::event::SessionStatus>,
    stop: impl std::future::Future<Output = ()>,
    #[cfg(unix)] mut usr1: tokio::signal::unix::Signal,
) {
    let mut timer = tokio::time::interval(Duration::from_secs(1));
    tokio::pin!(stop);
    loop {
        #[cfg(unix)]
        let kill = usr1.recv();
        #[cfg(not(unix))]
        let kill = std::future::pending::<Option<()>>();
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(m) => engine.handle(m).await,
                None => break,
            },
            _ = timer.tick() => engine.tick().await,
            Some(status) = session_rx.recv() => {
                engine.handle(ws::WsMessage::Event(engine::event::Event::Session(status))).await
            }
            _ = kill => {
                eprintln!("kill switch (SIGUSR1): cancelling every working order, trading halted");
                engine.kill("kill switch (SIGUSR1)").await;
            }
            _ = &mut stop => break,
        }
    }
    engine.stop().await;
}
