//! `ibflow run`: strategies live, on a CP Gateway or, by default, on the
//! built-in simulator replaying the bundled sample.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use clap::Args;
use rust_decimal::Decimal;

use engine::model::Conid;
use engine::registry::Params;
use engine::risk::RiskConfig;
use engine::strategy::{Scoped, Strategy};
use gateway_sim::{Gateway, GatewayConfig};
use ibkr::node::{LiveNode, NodeConfig};
use ibkr::reply::ReplyPolicy;
use ibkr::ws::ReconnectLimits;
use ibkr::{ClientConfig, ClientControl};

use crate::config::ConfigFile;

/// Flags of `ibflow run`; each wins over the same key of the config's
/// `[run]` section.
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
    /// Stop after this many seconds of trading (counted from when the
    /// strategies start; default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Wait for the gateway: at start, until it answers and someone is
    /// logged in (retrying every 2 to 30 s, saying what is missing); while
    /// running, when the session is gone (logged out, a competing login),
    /// keep reconnecting until someone logs in again. Default: fail at
    /// start saying why; while running, give up after a few attempts, halt
    /// trading and exit non-zero.
    #[arg(long)]
    pub wait_for_login: bool,
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
    /// Serve the control endpoint on this loopback address (health,
    /// metrics, status, kill switch, gateway proxy; see `[run] control`).
    #[arg(long, value_name = "ADDR")]
    pub control: Option<String>,
}

/// Run `ibflow run` until `--duration` ends or Ctrl-C, on its own
/// multi-threaded runtime. `db` is the `--db` flag (or `IBFLOW_DB`); without
/// it the config's `[store] db`, then `ibflow.db`, is used.
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

    // Control first: Ctrl-C, --duration and the kill switch act from
    // their own tasks on the client's control handle, so no request held
    // by the pacer (a 429 penalty box) can hold them.
    let control = ClientControl::default();
    let telemetry = ibkr::Telemetry::default();
    let (trading_tx, trading_rx) = tokio::sync::oneshot::channel();
    let (kill_tx, kill_rx) = spawn_control(&control, args.duration, trading_rx)?;
    // Stopped when dropped: on every way out of this function.
    let _control_server = start_control_server(
        args.control.take().or(run.control.clone()),
        run.control_token.as_ref(),
        &control,
        &telemetry,
        kill_tx,
    )
    .await?;

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

    let mut node_cfg = NodeConfig::new(ClientConfig {
        accept_invalid_certs: args.insecure,
        control: control.clone(),
        telemetry: telemetry.clone(),
        reconnect: if args.wait_for_login {
            ReconnectLimits::wait_forever()
        } else {
            ReconnectLimits::default()
        },
        ..ClientConfig::with_base_url(base_url)
    });
    // Leave room in the gateway's per-IP global limit for the operator.
    node_cfg.client.pacing.global = ibkr::pacing::BOT_GLOBAL;
    // A bot restarted by its supervisor right after a crash follows its
    // own dead process on the gateway's per-IP windows.
    node_cfg.client.pacing.assume_windows_used = args.gateway.is_some();
    node_cfg.account = args.account.clone();
    node_cfg.conids = conids;
    node_cfg.bar_period = Duration::from_secs(bar_seconds);
    node_cfg.reply = ReplyPolicy {
        auto_confirm: args.confirm.iter().cloned().collect(),
    };
    node_cfg.risk = risk;
    node_cfg.trading_hours = args.trading_hours.unwrap_or(args.gateway.is_some());
    if args.store {
        // The bot's identity in its cOIDs is the store's: a restart knows
        // its earlier orders.
        let store = store::Store::open(&db)
            .await
            .with_context(|| format!("opening the store {}", db.display()))?;
        node_cfg.bot_id = Some(store.bot_id().await.context("reading the store's bot id")?);
        store.close().await;
    }
    // A gateway that is not up yet, or not logged in: say what to do, and
    // with --wait-for-login wait for it (Ctrl-C still stops).
    // The same client then connects the node: one pacer for both.
    let client = ibkr::IbkrClient::new(node_cfg.client.clone())
        .map_err(|e| anyhow!("the gateway client: {e}"))?;
    if args.gateway.is_some() {
        tokio::select! {
            r = ibkr::startup::wait_until_ready(&client, args.wait_for_login) => {
                r.map_err(|e| match e.is_transient() {
                    true => anyhow!("{e} (--wait-for-login waits for it)"),
                    false => anyhow!("{e}"),
                })?;
            }
            _ = control.stopped() => return Err(anyhow!("stopped while connecting to the gateway (waiting for it to answer)")),
        }
    }
    let mut node = tokio::select! {
        n = LiveNode::connect_with(client, node_cfg, strategies) => n?,
        _ = control.stopped() => return Err(anyhow!("stopped while connecting to the gateway")),
    };
    let strikes = node.engine().dispatcher().event_pairing().pairs().len();
    if strikes > 0 {
        eprintln!("ForecastEx: {strikes} strike(s) known to strategies");
    }
    let mut history_gap = None;
    if args.store {
        let store = store::Store::open(&db)
            .await
            .with_context(|| format!("opening the store {}", db.display()))?;
        if !node.event_records().is_empty() {
            // `positions --local` nets the strikes with these.
            store
                .put_event_contracts(node.event_records())
                .await
                .context("storing the ForecastEx contracts")?;
        }
        // Before reconciling: what the broker sends now is not what the
        // store had. The broker's trades reach back TRADES_WINDOW_DAYS.
        let window = cpapi::messages::TRADES_WINDOW_DAYS;
        let gap = store
            .history_gap(chrono::Utc::now(), i64::from(window))
            .await
            .context("reading the store's last record")?;
        if let Some(g) = gap {
            eprintln!(
                "WARNING: store {} was last written {}: executions from {} to {} are beyond \
                 the broker's {window}-day trades window and cannot be recovered",
                db.display(),
                g.last_recorded.to_rfc3339(),
                g.last_recorded.date_naive(),
                g.recoverable_from.date_naive()
            );
        }
        history_gap = gap;
        let (with_store, found) = tokio::select! {
            r = node.with_journal(Box::new(store.clone())) => r?,
            _ = control.stopped() => {
                return Err(anyhow!("stopped while reconciling the store with the broker"))
            }
        };
        node = with_store;
        let found = resolve_missing(&node, &store, found).await?;
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
    // The kill switch reaches the engine (cancels, halt) once it runs; the
    // transport refused order entry the moment the signal came.
    let switch = node.kill_switch();
    tokio::spawn(async move {
        let mut kill_rx = kill_rx;
        while let Some(reason) = kill_rx.recv().await {
            switch.kill(reason);
        }
    });
    eprintln!(
        "running {} live; Ctrl-C stops; kill switch: kill -USR1 {}",
        names.join(", "),
        std::process::id()
    );
    let _ = trading_tx.send(());
    node.run(control.stopped()).await;
    // Cancels at the end are bounded too: in the penalty box they fail at
    // once (the run is stopping), otherwise each request has its timeout.
    let summary = tokio::time::timeout(FINISH_WITHIN, node.finish(args.keep_orders))
        .await
        .map_err(|_| {
            anyhow!(
                "could not cancel working orders and close within {}s: check the account's \
                 working orders",
                FINISH_WITHIN.as_secs()
            )
        })?;
    let stats = summary.stats;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "stats": stats,
                "equity": cents(summary.equity),
                "realized_pnl": cents(summary.realized_pnl),
                "positions": summary.positions,
                "trading_state": format!("{:?}", summary.trading_state),
                "history_gap": history_gap.map(|g| serde_json::json!({
                    "from": g.last_recorded.date_naive().to_string(),
                    "to": g.recoverable_from.date_naive().to_string(),
                })),
            })
        );
    } else {
        println!(
            "quotes {}  bars {}  order updates {}  executions {}  rejected {}",
            stats.quotes, stats.bars, stats.order_updates, stats.executions, stats.rejected
        );
        println!(
            "equity {}  realized {}",
            cents(summary.equity),
            cents(summary.realized_pnl)
        );
        for p in &summary.positions {
            println!("position {} {} @ {}", p.conid, p.quantity, p.avg_price);
        }
        if let Some(g) = history_gap {
            println!(
                "history gap: executions from {} to {} could not be recovered",
                g.last_recorded.date_naive(),
                g.recoverable_from.date_naive()
            );
        }
    }
    if let Some(gw) = sim {
        gw.shutdown().await;
    }
    if let Some(reason) = control.session_ended() {
        return Err(anyhow!(
            "the gateway session ended ({reason}); trading was halted and the bot stopped. \
             Log in to the gateway again (or run with --wait-for-login to wait for that)"
        ));
    }
    if let Some(left) = control.penalty_remaining() {
        return Err(anyhow!(
            "stopped in the gateway's 429 penalty box ({}s left): requests, cancels of working \
             orders included, could not be sent; check the account's working orders",
            left.as_secs()
        ));
    }
    Ok(())
}

/// Longest wait for the cancels and the close at the end of a run.
const FINISH_WITHIN: Duration = Duration::from_secs(30);

/// Longest an orderly stop may take, from the signal or the end of
/// `--duration` to the process's exit: the cancels and the close
/// ([`FINISH_WITHIN`]) with room for the store's flush.
const STOP_WITHIN: Duration = Duration::from_secs(60);

/// A stop that does not finish within [`STOP_WITHIN`] ends the process
/// with a clear error (exit 3): a bounded run always ends. On an OS
/// thread, so a wedged async runtime cannot hold it.
fn start_watchdog() {
    std::thread::spawn(|| {
        std::thread::sleep(STOP_WITHIN);
        eprintln!(
            "ERROR: the orderly stop did not finish within {}s; exiting. Check the account's \
             working orders",
            STOP_WITHIN.as_secs()
        );
        std::process::exit(3);
    });
}

/// Start the control tasks: SIGINT (Ctrl-C), SIGTERM, or the end of `duration`
/// counted from when `trading` is told, stops the run
/// ([`ClientControl::stop`]); SIGUSR1, the kill switch, halts order entry
/// at the transport at once
/// ([`ClientControl::halt_orders`]) and sends its reason on the returned
/// channel for the engine (cancel everything, halt). The signal handlers
/// are installed before this returns, so a signal never meets the default
/// action once the bot is starting.
///
/// Also returns a sender of that channel, for the control endpoint's
/// `POST /kill`.
#[allow(clippy::type_complexity)]
fn spawn_control(
    control: &ClientControl,
    duration: Option<u64>,
    trading: tokio::sync::oneshot::Receiver<()>,
) -> Result<(
    tokio::sync::mpsc::UnboundedSender<String>,
    tokio::sync::mpsc::UnboundedReceiver<String>,
)> {
    let deadline = async move {
        match (duration, trading.await) {
            (Some(s), Ok(())) => tokio::time::sleep(Duration::from_secs(s)).await,
            _ => std::future::pending().await,
        }
    };
    let (kill_tx, kill_rx) = tokio::sync::mpsc::unbounded_channel();
    let endpoint_tx = kill_tx.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        // What systemd and docker send: the same orderly stop as Ctrl-C.
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut usr1 =
            signal(SignalKind::user_defined1()).context("installing the SIGUSR1 kill switch")?;
        let c = control.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => eprintln!("SIGINT: stopping"),
                _ = term.recv() => eprintln!("SIGTERM: stopping"),
                _ = deadline => {}
            }
            c.stop();
            start_watchdog();
        });
        let c = control.clone();
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                let reason = "kill switch (SIGUSR1)";
                eprintln!("{reason}: cancelling every working order, trading halted");
                c.halt_orders(reason);
                if kill_tx.send(reason.to_owned()).is_err() {
                    return;
                }
            }
        });
    }
    #[cfg(not(unix))]
    {
        let c = control.clone();
        tokio::spawn(async move {
            let _keep = kill_tx;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => eprintln!("Ctrl-C: stopping"),
                _ = deadline => {}
            }
            c.stop();
        });
    }
    Ok((endpoint_tx, kill_rx))
}

/// Start the control endpoint when `addr` (`--control`, else `[run]
/// control`) is given: before the bot connects, so `/health` answers
/// "connecting" meanwhile and `POST /kill` works from the start. Its
/// kill switch is SIGUSR1's: `kill` is the same channel.
async fn start_control_server(
    addr: Option<String>,
    config_token: Option<&ibkr::BearerToken>,
    control: &ClientControl,
    telemetry: &ibkr::Telemetry,
    kill: tokio::sync::mpsc::UnboundedSender<String>,
) -> Result<Option<crate::control::server::ControlServer>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let addr = crate::control::loopback_addr(&addr)?;
    let token = crate::control::token(config_token);
    let authenticated = token.is_some();
    let server = crate::control::server::ControlServer::start(
        addr,
        crate::control::server::ControlState {
            telemetry: telemetry.clone(),
            control: control.clone(),
            kill,
            token,
        },
    )
    .await?;
    eprintln!(
        "control endpoint on http://{} (/health /metrics /status, POST /kill){}",
        server.local_addr(),
        if authenticated {
            ", bearer token required"
        } else {
            ""
        }
    );
    Ok(Some(server))
}

/// Orders the store holds as working that the broker's live list no
/// longer shows (finished on an earlier day, while the bot was down): asked
/// one by one of `/iserver/account/order/status/{id}` and stored with
/// their final status. What is still unexplained is returned.
pub async fn resolve_missing<S: Strategy>(
    node: &LiveNode<S>,
    store: &store::Store,
    found: Vec<engine::journal::Discrepancy>,
) -> Result<Vec<engine::journal::Discrepancy>> {
    let mut left = Vec::with_capacity(found.len());
    for d in found {
        let engine::journal::Discrepancy::OrderMissingAtBroker { client_order_id } = &d else {
            left.push(d);
            continue;
        };
        let broker_id = store
            .order(client_order_id)
            .await?
            .and_then(|o| o.broker_order_id);
        let Some(broker_id) = broker_id else {
            left.push(d);
            continue;
        };
        match node.order_status(&broker_id).await {
            Ok((status, filled, avg)) => {
                if store
                    .resolve_from_status(client_order_id, status, filled, avg, chrono::Utc::now())
                    .await?
                {
                    eprintln!(
                        "  order {client_order_id} finished while the bot was down: {status}"
                    );
                    continue;
                }
                left.push(d);
            }
            Err(e) => {
                tracing::warn!(order = %client_order_id, error = %e, "order status unknown");
                left.push(d);
            }
        }
    }
    Ok(left)
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
